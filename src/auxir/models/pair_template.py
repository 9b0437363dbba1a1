"""Pack pre-tokenised (query, document) pieces into model inputs on the device, without Python loops.

Every encoder family frames a text pair with its own special tokens (BERT: ``[CLS] a [SEP] b [SEP]``,
RoBERTa: ``<s> a </s></s> b </s>``). ``PairTemplate`` reads that frame off the tokenizer once; ``pack``
then assembles whole batches with one gather, so per-step work does not grow with Python-side lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PairTemplate:
    prefix: tuple[int, ...]  # special tokens before the first segment
    middle: tuple[int, ...]  # between the segments
    suffix: tuple[int, ...]  # after the second segment
    first_type: int  # token type id of prefix + first segment + middle
    second_type: int  # token type id of second segment + suffix
    pad_id: int
    mask_id: int | None

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer) -> PairTemplate:
        """Find the frame by encoding two marker words alone and as a pair."""
        for first, second in (("a", "b"), ("hello", "world"), ("x", "y")):
            a = tokenizer(first, add_special_tokens=False)["input_ids"]
            b = tokenizer(second, add_special_tokens=False)["input_ids"]
            pair = tokenizer(first, second)
            ids = pair["input_ids"]
            if len(a) != 1 or len(b) != 1 or a[0] not in ids or b[0] not in ids:
                continue
            i, j = ids.index(a[0]), len(ids) - 1 - ids[::-1].index(b[0])
            types = pair.get("token_type_ids") or [0] * len(ids)
            return cls(
                prefix=tuple(ids[:i]),
                middle=tuple(ids[i + 1 : j]),
                suffix=tuple(ids[j + 1 :]),
                first_type=types[i],
                second_type=types[j],
                pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
                mask_id=tokenizer.mask_token_id,
            )
        raise ValueError(f"cannot infer the pair template of tokenizer {type(tokenizer).__name__}")

    def pack(
        self,
        first: torch.Tensor,  # (n, L1) token ids, right-padded
        first_len: torch.Tensor,  # (n,)
        second: torch.Tensor,  # (n, L2)
        second_len: torch.Tensor,  # (n,)
    ) -> PackedPairs:
        """``prefix first middle second suffix`` per row, right-padded to the longest row."""
        device = first.device
        p, m, s = len(self.prefix), len(self.middle), len(self.suffix)
        total = first_len + second_len + p + m + s  # (n,)
        width = int(total.max())
        pos = torch.arange(width, device=device).expand(len(total), width)  # (n, W)
        a_start = p
        mid_start = (a_start + first_len).unsqueeze(1)  # (n, 1)
        b_start = mid_start + m
        suf_start = b_start + second_len.unsqueeze(1)
        end = suf_start + s

        # One concatenated source per row: [prefix middle suffix pad | first | second]; index into it.
        specials = torch.tensor([*self.prefix, *self.middle, *self.suffix, self.pad_id], device=device)
        n_spec = len(specials)
        source = torch.cat([specials.expand(len(total), n_spec), first, second], dim=1)
        in_a = (pos >= a_start) & (pos < mid_start)
        in_mid = (pos >= mid_start) & (pos < b_start)
        in_b = (pos >= b_start) & (pos < suf_start)
        in_suf = (pos >= suf_start) & (pos < end)
        index = torch.full_like(pos, n_spec - 1)  # pad
        index = torch.where(pos < p, pos, index)
        index = torch.where(in_mid, p + (pos - mid_start), index)
        index = torch.where(in_suf, p + m + (pos - suf_start), index)
        index = torch.where(in_a, n_spec + (pos - a_start), index)
        index = torch.where(in_b, n_spec + first.shape[1] + (pos - b_start), index)
        input_ids = source.gather(1, index)  # (n, W)
        attention_mask = (pos < end).long()
        token_type_ids = torch.where(pos >= b_start, self.second_type, self.first_type) * attention_mask
        return PackedPairs(
            input_ids, attention_mask, token_type_ids, first_offset=a_start, second_offset=b_start
        )

    def pack_single(self, text: torch.Tensor, text_len: torch.Tensor) -> PackedPairs:
        """``prefix text suffix`` per row: a text alone, framed as the tokenizer frames one sequence
        (BERT ``[CLS] x [SEP]``, RoBERTa ``<s> x </s>``)."""
        device = text.device
        p, s = len(self.prefix), len(self.suffix)
        width = int(text_len.max()) + p + s
        pos = torch.arange(width, device=device).expand(len(text_len), width)  # (n, W)
        suf_start = (p + text_len).unsqueeze(1)  # (n, 1)
        specials = torch.tensor([*self.prefix, *self.suffix, self.pad_id], device=device)
        n_spec = len(specials)
        source = torch.cat([specials.expand(len(text_len), n_spec), text], dim=1)
        index = torch.full_like(pos, n_spec - 1)
        index = torch.where(pos < p, pos, index)
        index = torch.where((pos >= p) & (pos < suf_start), n_spec + (pos - p), index)
        index = torch.where((pos >= suf_start) & (pos < suf_start + s), p + (pos - suf_start), index)
        input_ids = source.gather(1, index.clamp(max=source.shape[1] - 1))  # (n, W)
        attention_mask = (pos < suf_start + s).long()
        token_type_ids = torch.full_like(input_ids, self.first_type) * attention_mask
        return PackedPairs(input_ids, attention_mask, token_type_ids, first_offset=p, second_offset=suf_start)


@dataclass
class PackedPairs:
    input_ids: torch.Tensor  # (n, W)
    attention_mask: torch.Tensor  # (n, W)
    token_type_ids: torch.Tensor  # (n, W)
    first_offset: int  # position of the first segment's first token
    second_offset: torch.Tensor  # (n, 1) position of the second segment's first token
