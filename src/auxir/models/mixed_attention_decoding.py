"""Next-token logits for (document, partial query) rows under mixed attention, one step at a time: what query
generation (``auxir.generation``) searches over.

Under GDMTL's mixed attention (``attention_masks.mixed_attention_mask``) the source ``[CLS] document [SEP]``
never attends to the target, and each target token attends to the source and to the target tokens before it
only. The keys and values of the source and of the tokens already generated therefore never change as tokens
are appended. ``CachedDecoder`` encodes the source once, keeps every layer's keys and values (a Hugging Face
``StaticCache``, which BERT's self-attention writes to even as an encoder: allocated once, so a step copies
nothing but the new token's keys and values) and runs only the new token through the layers at each step. ``ReencodingDecoder`` re-encodes the whole pair at every step with
``CrossEncoder.mixed_attention``: the reference, and the path for encoders the cache does not cover
(``cache_blocker`` says why).

A decoder holds rows, each one partial query of one document; ``start`` gives one row per document.
``step(tokens, parents)`` extends the rows ``parents`` (repeats allowed: a beam keeps several children of one
row, sampling draws several queries from one document; rows left out are dropped) by ``tokens``, and returns
the logits of the token after each. Logits are float32.

    decoder = CachedDecoder(model, source, source_len, 32)  # (n, Ls) right-padded ids, (n,) lengths, steps
    logits = decoder.start()  # (n, V): the first query token of each document
    logits = decoder.step(logits.argmax(-1))  # (n, V): the second
"""

from __future__ import annotations

from typing import Protocol

import torch
from transformers import StaticCache

from auxir.models.attention_masks import for_attention, mixed_attention_mask

# Encoders whose self-attention writes to a cache it is passed even when the model is not a decoder, and whose
# position ids are plain indices (what the re-encoded pair gets by default). RoBERTa-style embeddings count
# positions from padding_idx + 1 and would need their own rule: they are re-encoded instead.
CACHED_MODEL_TYPES = ("bert",)


class MixedAttentionDecoder(Protocol):
    def __init__(self, model, source: torch.Tensor, source_len: torch.Tensor, max_new_tokens: int): ...

    def start(self) -> torch.Tensor: ...  # (n_docs, V)

    def step(self, tokens: torch.Tensor, parents: torch.Tensor | None = None) -> torch.Tensor: ...  # (R, V)


def cache_blocker(model) -> str | None:
    """Why ``CachedDecoder`` cannot decode for ``model``'s encoder, or None when it can."""
    config = model.backbone.config
    if config.model_type not in CACHED_MODEL_TYPES:
        return (
            f"the key-value cache covers model types {', '.join(CACHED_MODEL_TYPES)}, "
            f"found {config.model_type!r}"
        )
    position = getattr(config, "position_embedding_type", "absolute")
    if position != "absolute":
        return f"the key-value cache needs absolute position embeddings, found {position!r}"
    return None


class ReencodingDecoder:
    """Every step encodes ``[CLS] document [SEP] query so far [SEP]`` whole and reads the last query position."""

    def __init__(self, model, source: torch.Tensor, source_len: torch.Tensor, max_new_tokens: int):
        self.model = model  # max_new_tokens: unused, nothing is kept
        self.source, self.source_len = source, source_len  # (n, Ls), (n,)
        self.row_doc = torch.arange(source.shape[0], device=source.device)  # (R,) each row's document
        self.target = source.new_zeros((source.shape[0], 0))  # (R, t) each row's query so far

    def start(self) -> torch.Tensor:
        return self._logits()

    def step(self, tokens: torch.Tensor, parents: torch.Tensor | None = None) -> torch.Tensor:
        if parents is not None:
            self.row_doc, self.target = self.row_doc[parents], self.target[parents]
        self.target = torch.cat([self.target, tokens.unsqueeze(1)], dim=1)  # (R, t + 1)
        return self._logits()

    def _logits(self) -> torch.Tensor:  # (R, V)
        rows, steps = self.target.shape
        out = self.model.mixed_attention(
            self.source[self.row_doc],
            self.source_len[self.row_doc],
            self.target,
            torch.full((rows,), steps, device=self.target.device),
        )
        last = out.target_start[:, 0] - 1 + steps  # (R,) the last position: it predicts the next token
        hidden = out.last_hidden_state[torch.arange(rows, device=last.device), last]  # (R, H)
        return self.model.token_head(hidden).float()


class CachedDecoder:
    """The source encoded once; each step runs the new tokens alone through the layers, attending to the
    cached keys and values of the row's source (padding masked) and of its query so far."""

    def __init__(self, model, source: torch.Tensor, source_len: torch.Tensor, max_new_tokens: int):
        self.model = model
        self.source, self.source_len = source, source_len  # (n, Ls), (n,)
        self.max_new_tokens = max_new_tokens  # the most tokens ``step`` appends: the cache holds them all
        self.encoder = model.backbone.base_model
        self.implementation = self.encoder.config._attn_implementation
        self.dtype = self.encoder.get_input_embeddings().weight.dtype
        self.cache: StaticCache | None = None
        self.key_mask: torch.Tensor | None = None  # (R, K) the cache slots each row attends
        self.filled = 0  # cache slots written: the source's width, then one a step
        self.next_position: torch.Tensor | None = None  # (R,) position of each row's next query token

    def start(self) -> torch.Tensor:
        """Encode ``[CLS] document [SEP]`` (the pair's frame up to the query) and keep its keys and values."""
        source, source_len = self.source, self.source_len
        empty = source.new_zeros((source.shape[0], 0))
        packed = self.model.template.pack(source, source_len, empty, torch.zeros_like(source_len))
        start = packed.second_offset[:, 0]  # (n,) the first query position
        width = int(start.max())
        slots = width + self.max_new_tokens
        self.cache = StaticCache(config=self.encoder.config, max_cache_len=slots)
        pos = torch.arange(slots, device=source.device)  # (K,)
        self.key_mask = pos < start.unsqueeze(1)  # (n, K) the real source positions; the query's slots follow
        mask = mixed_attention_mask(self.key_mask.long(), start.unsqueeze(1))[:, :, :width]  # (n, 1, W, K)
        out = self.encoder(
            input_ids=packed.input_ids[:, :width],
            attention_mask=for_attention(mask, self.implementation, self.dtype),
            token_type_ids=packed.token_type_ids[:, :width],
            position_ids=pos[:width].expand(len(start), width),
            past_key_values=self.cache,
        )
        self.filled = width
        if int(self.cache.get_seq_length()) != width:
            raise RuntimeError(
                f"{type(self.encoder).__name__} did not fill the key-value cache it was given (this version of "
                "transformers may cache only decoders); generate with GenerationConfig(kv_cache=False)"
            )
        self.next_position = start
        last = out.last_hidden_state[torch.arange(len(start), device=start.device), start - 1]  # (n, H)
        return self.model.token_head(last).float()

    def step(self, tokens: torch.Tensor, parents: torch.Tensor | None = None) -> torch.Tensor:
        if self.filled == self.key_mask.shape[1]:
            raise ValueError(f"CachedDecoder: the cache holds max_new_tokens = {self.max_new_tokens} steps")
        if parents is not None:  # beam search's reordering, sampling's copies, finished documents dropped
            self.cache.reorder_cache(parents)
            self.key_mask, self.next_position = self.key_mask[parents], self.next_position[parents]
        rows = tokens.shape[0]
        # The new token attends to its row's source, its query so far and itself (written to the next slot).
        self.key_mask[:, self.filled] = True  # (R, K)
        self.filled += 1
        mask = self.key_mask.view(rows, 1, 1, -1)  # (R, 1, 1, K): one query position
        out = self.encoder(
            input_ids=tokens.view(rows, 1),
            attention_mask=for_attention(mask, self.implementation, self.dtype),
            token_type_ids=torch.full_like(tokens, self.model.template.second_type).view(rows, 1),
            position_ids=self.next_position.view(rows, 1),
            past_key_values=self.cache,
        )
        self.next_position = self.next_position + 1
        return self.model.token_head(out.last_hidden_state[:, 0]).float()  # (R, V)
