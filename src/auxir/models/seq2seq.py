"""Encoder-decoder reranker (GDMTL §4.3): any Hugging Face seq2seq model, or BERT2BERT built from an encoder.

Ranking (Table 2, "Ranking Input"): a linear head on the decoder's final state at its last input token, the
one state that has read the whole decoder input (the decoder is causal; BART's sequence classifier reads the
same state):

* ``layout: separate`` (GDMTL_S / BART_S): the passage → encoder, the query → decoder;
* ``layout: concatenated`` (GDMTL_C / BART_C): passage ⊕ query → encoder *and* decoder.

Generation (Table 2, "Generative Input", both layouts): the passage → encoder, the query → decoder, the
loss on the decoder's own language-model head (``generation_loss``, called by the ``query_generation``
objective). The decoder reads a text as Hugging Face's ``labels=`` does: the labels are the tokenizer's
framing of the text (``[CLS] q [SEP]``, ``<s> q </s>``) and the decoder input is them shifted right behind
``decoder_start_token_id``. The ranking decoder input is that same shifted sequence, so under ``separate``
ranking and query generation feed the decoder exactly the same tokens; the task prefix (``rank:``,
``sum:``) before the passage on the encoder side tells them apart (§5.2).

Checkpoints: an encoder-decoder (BART, T5, a saved ``EncoderDecoderModel``) loads as it is; an encoder
(BERT, MiniLM) becomes BERT2BERT: ``EncoderDecoderModel`` of the encoder and a copy of it as a causal
decoder with new cross-attention (Rothe et al., 2020), ``decoder_start_token_id`` = [CLS], end = [SEP].
Token type ids go to each side only if it takes them (BERT does, BART does not). Saved as::

    config.json, model.safetensors, tokenizer files   # the Hugging Face seq2seq model, as it loads alone
    auxir_heads.safetensors                           # the ranking head
    seq2seq_ranker.json                               # Seq2SeqRankerConfig
    auxir.json                                        # {"format": "auxir-seq2seq-ranker", "version": 1}
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from auxir.io import atomic_directory
from auxir.models.cross_encoder import prepend
from auxir.models.hf import (
    check_model_available,
    encoder_layers,
    hub_offline,
    load_tokenizer_and_model,
    resolve_model_name,
)
from auxir.models.pair_template import PackedPairs, PairTemplate

HEADS_FILE = "auxir_heads.safetensors"
CONFIG_FILE = "seq2seq_ranker.json"
FORMAT = {"format": "auxir-seq2seq-ranker", "version": 1}

Reduction = Literal["sum", "mean"]


@dataclass
class Seq2SeqRankerConfig:
    """Architecture settings of a ``Seq2SeqRanker``; saved in ``seq2seq_ranker.json``."""

    # separate: passage → encoder, query → decoder (GDMTL_S); concatenated: passage ⊕ query on both (GDMTL_C)
    layout: Literal["separate", "concatenated"] = "separate"
    # seq2seq: the checkpoint is an encoder-decoder; bert2bert: build one from an encoder checkpoint;
    # auto: whichever the checkpoint is
    warm_start: Literal["auto", "seq2seq", "bert2bert"] = "auto"
    max_length: int = 256  # encoder tokens (and, concatenated, decoder tokens), special tokens included
    max_query_length: int = 32  # query tokens
    # Text before the passage of every ranking input (GDMTL §5.2: "rank:"); "" puts none
    task_prefix: str = ""

    def __post_init__(self) -> None:
        if self.layout not in ("separate", "concatenated"):
            raise ValueError(
                f"Seq2SeqRankerConfig.layout: expected separate or concatenated, found {self.layout!r}"
            )
        if self.warm_start not in ("auto", "seq2seq", "bert2bert"):
            raise ValueError(
                "Seq2SeqRankerConfig.warm_start: expected auto, seq2seq or bert2bert, "
                f"found {self.warm_start!r}"
            )
        if self.max_query_length < 1 or self.max_length <= self.max_query_length:
            raise ValueError(
                "Seq2SeqRankerConfig: expected 1 ≤ max_query_length < max_length, found "
                f"max_query_length={self.max_query_length}, max_length={self.max_length}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Seq2SeqRankerConfig:
        valid = {f.name for f in fields(cls)}
        unknown = set(values) - valid
        if unknown:
            raise ValueError(
                f"unknown Seq2SeqRankerConfig field(s) {sorted(unknown)}; valid: {sorted(valid)}"
            )
        return cls(**values)


@dataclass
class Seq2SeqInputs:
    """One encoder input and one decoder input per row; token types are None for a side that takes none."""

    input_ids: torch.Tensor  # (n, S)
    attention_mask: torch.Tensor  # (n, S)
    token_type_ids: torch.Tensor | None  # (n, S)
    decoder_input_ids: torch.Tensor  # (n, T) the decoder text shifted right behind decoder_start_token_id
    decoder_attention_mask: torch.Tensor  # (n, T)
    decoder_token_type_ids: torch.Tensor | None  # (n, T)
    labels: torch.Tensor  # (n, T) the decoder text, -100 at padding: what each decoder state predicts

    @property
    def last(self) -> torch.Tensor:  # (n,) the last decoder input token of each row
        return self.decoder_attention_mask.sum(dim=1) - 1

    def model_kwargs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of the wrapped Hugging Face model's ``forward`` (labels left out)."""
        kwargs = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "decoder_input_ids": self.decoder_input_ids,
            "decoder_attention_mask": self.decoder_attention_mask,
        }
        if self.token_type_ids is not None:
            kwargs["token_type_ids"] = self.token_type_ids
        if self.decoder_token_type_ids is not None:
            kwargs["decoder_token_type_ids"] = self.decoder_token_type_ids
        return kwargs


@dataclass
class Seq2SeqRankerOutput:
    scores: torch.Tensor  # (n,)
    decoder_last_hidden_state: torch.Tensor  # (n, T, H)
    encoder_last_hidden_state: torch.Tensor  # (n, S, H)


def _takes(module: nn.Module, argument: str) -> bool:
    return argument in inspect.signature(module.forward).parameters


class Seq2SeqRanker(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        config: Seq2SeqRankerConfig,
        new_parameters: set[str] = frozenset(),
    ):
        super().__init__()
        # A Hugging Face seq2seq LM: BartForConditionalGeneration, T5ForConditionalGeneration, EncoderDecoderModel
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self._text_ids: dict[str, tuple[int, ...]] = {}
        start = model.config.decoder_start_token_id
        if start is None:
            start = getattr(model.generation_config, "decoder_start_token_id", None)
        if start is None:
            raise ValueError(
                f"Seq2SeqRanker: {type(model).__name__} has no decoder_start_token_id in its config; "
                "set config.decoder_start_token_id on the checkpoint"
            )
        self.decoder_start_id = int(start)
        self._encoder_types = _takes(model.get_encoder(), "token_type_ids")
        self._decoder_types = _takes(self.decoder_stack, "token_type_ids")
        self.rank_head = nn.Linear(self.decoder_stack.config.hidden_size, 1)
        self._new_parameters = set(new_parameters)
        if self.max_doc_tokens < 1:
            raise ValueError(
                f"Seq2SeqRanker: max_length {config.max_length} leaves no room for the document beside "
                f"max_query_length {config.max_query_length}, the special tokens and the task prefix"
            )

    @property
    def accepts_token_types(self) -> bool:
        """Whether the encoder takes token type ids (BERT does, BART does not)."""
        return self._encoder_types

    @property
    def decoder_stack(self) -> nn.Module:
        """The decoder without its language-model head (BartDecoder; BERT2BERT's BertModel): ranking reads
        its states, never vocabulary logits."""
        return self.model.get_decoder().base_model

    # ---- construction and persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, config: Seq2SeqRankerConfig | None = None
    ) -> Seq2SeqRanker:
        """A folder saved by ``save_pretrained``, or a new ranker from an encoder-decoder or an encoder
        checkpoint (``config.warm_start``); the ranking head starts random unless the folder holds one."""
        from transformers import AutoModelForSeq2SeqLM

        path = resolve_model_name(str(name_or_path))
        saved = read_config(path)
        config = config or saved or Seq2SeqRankerConfig()
        origin = resolve_warm_start(path, config.warm_start)
        if origin == "seq2seq":
            tokenizer, (model, info) = load_tokenizer_and_model(
                path, AutoModelForSeq2SeqLM, output_loading_info=True
            )
            new = {f"model.{k}" for k in info.get("missing_keys", [])}
        else:
            tokenizer, model, new = _bert2bert(path)
        # Keep fp32 master weights even for an fp16 checkpoint (AdamW cannot update fp16); autocast does bf16.
        ranker = cls(model.float(), tokenizer, config, new)
        heads = Path(path) / HEADS_FILE
        if saved is not None and heads.exists():
            missing, unexpected = ranker.heads().load_state_dict(load_file(str(heads)), strict=False)
            if missing or unexpected:
                raise ValueError(
                    f"{heads}: expected the ranking head's weights {sorted(ranker.heads().state_dict())}, "
                    f"found missing {missing}, unexpected {unexpected}"
                )
        else:
            ranker._new_parameters |= {f"rank_head.{n}" for n, _ in ranker.rank_head.named_parameters()}
        return ranker

    def heads(self) -> nn.ModuleDict:
        """Everything that is not the Hugging Face model, as one state dict (``auxir_heads.safetensors``)."""
        return nn.ModuleDict({"rank_head": self.rank_head})

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the folder described in the module docstring into a temporary folder, then move it in place.
        The saved model is an encoder-decoder whatever it started from, so its config says ``seq2seq``."""
        with atomic_directory(directory) as tmp:
            self.model.config.architectures = [type(self.model).__name__]
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            state = {k: v.detach().contiguous().cpu() for k, v in self.heads().state_dict().items()}
            save_file(state, str(tmp / HEADS_FILE))
            stored = asdict(replace(self.config, warm_start="seq2seq"))
            (tmp / CONFIG_FILE).write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
            (tmp / "auxir.json").write_text(json.dumps(FORMAT) + "\n", encoding="utf-8")

    def new_parameter_names(self) -> set[str]:
        """Parameters that start random (the ranking head, BERT2BERT's cross-attention): they may take their
        own learning rate, and a head warm-up trains only them."""
        return self._new_parameters & {n for n, _ in self.named_parameters()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last decoder layer's parameters: ranking and generation both read its output."""
        return [p for p in _layers(self.decoder_stack)[-1].parameters() if p.requires_grad]

    # ---- token budgets (what the token caches keep) ----------------------------------------------
    def text_ids(self, text: str) -> tuple[int, ...]:
        """Token ids of a short fixed text (a task prefix), without special tokens; tokenised once."""
        if text not in self._text_ids:
            self._text_ids[text] = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._text_ids[text]

    @property
    def _single_special(self) -> int:
        return len(self.template.prefix) + len(self.template.suffix)

    @property
    def max_query_tokens(self) -> int:
        return self.config.max_query_length

    @property
    def max_doc_tokens(self) -> int:
        """Document tokens one encoder input holds beside the task prefix (concatenated: and a full query)."""
        cfg = self.config
        prefix = len(self.text_ids(cfg.task_prefix))
        if cfg.layout == "separate":
            return cfg.max_length - self._single_special - prefix
        return cfg.max_length - cfg.max_query_length - self.template.num_special - prefix

    def query_in_pair(self, query, query_len) -> tuple[torch.Tensor, torch.Tensor]:
        """The query as the model reads it, its first ``max_query_length`` tokens: (q, L) ids, (q,) lens."""
        return _cut(query, query_len, self.config.max_query_length)

    def document_in_pair(self, doc, doc_len) -> tuple[torch.Tensor, torch.Tensor]:
        """The document as one ranking input holds it: its first ``max_doc_tokens`` tokens."""
        return _cut(doc, doc_len, self.max_doc_tokens)

    # ---- inputs -----------------------------------------------------------------------------------
    def pack(self, query, query_len, doc, doc_len) -> Seq2SeqInputs:
        """Ranking inputs (Table 2): ``separate``: ``[CLS] rank: P [SEP]`` → encoder, ``[CLS] Q [SEP]`` →
        decoder; ``concatenated``: ``[CLS] rank: P [SEP] Q [SEP]`` → both (BERT's frames; each tokenizer
        frames with its own special tokens)."""
        query, query_len = self.query_in_pair(query, query_len)
        doc, doc_len = prepend(self.text_ids(self.config.task_prefix), *self.document_in_pair(doc, doc_len))
        if self.config.layout == "separate":
            source = self.template.pack_single(doc, doc_len)
            return self._inputs(source, self.template.pack_single(query, query_len))
        both = self.template.pack(doc, doc_len, query, query_len)
        return self._inputs(both, both)

    def generation_inputs(self, source, source_len, target, target_len) -> Seq2SeqInputs:
        """``source`` → encoder (cut to ``max_length``), ``target`` → decoder; labels: the framed target."""
        framed_target = self.template.pack_single(target, target_len)
        inputs = self._inputs(self.source_frame(source, source_len), framed_target)
        empty = (target_len == 0).unsqueeze(1)  # an empty target teaches nothing, not even its frame
        inputs.labels = inputs.labels.masked_fill(empty, -100)
        return inputs

    def source_frame(self, source, source_len) -> PackedPairs:
        """A generation source as the encoder reads it: cut to ``max_length`` and framed as one text."""
        return self.template.pack_single(
            *_cut(source, source_len, self.config.max_length - self._single_special)
        )

    def _inputs(self, source: PackedPairs, target: PackedPairs) -> Seq2SeqInputs:
        mask = target.attention_mask  # the shifted input is as long as the text it predicts
        start = torch.full_like(target.input_ids[:, :1], self.decoder_start_id)
        decoder_ids = torch.cat([start, target.input_ids[:, :-1]], dim=1)  # (n, T)
        decoder_ids = decoder_ids.masked_fill(mask == 0, self.template.pad_id)
        decoder_types = None
        if self._decoder_types:
            types = target.token_type_ids
            decoder_types = torch.cat(
                [torch.full_like(types[:, :1], self.template.first_type), types[:, :-1]], 1
            )
            decoder_types = decoder_types * mask
        return Seq2SeqInputs(
            input_ids=source.input_ids,
            attention_mask=source.attention_mask,
            token_type_ids=source.token_type_ids if self._encoder_types else None,
            decoder_input_ids=decoder_ids,
            decoder_attention_mask=mask,
            decoder_token_type_ids=decoder_types,
            labels=target.input_ids.masked_fill(mask == 0, -100),
        )

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, inputs: Seq2SeqInputs) -> Seq2SeqRankerOutput:
        """Encoder, then the decoder stack without its LM head; the score reads the last decoder state."""
        extra = {"token_type_ids": inputs.token_type_ids} if inputs.token_type_ids is not None else {}
        encoded = self.model.get_encoder()(
            input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, **extra
        ).last_hidden_state  # (n, S, H_enc)
        projection = getattr(self.model, "enc_to_dec_proj", None)  # EncoderDecoderModel of unequal widths
        cross = projection(encoded) if projection is not None else encoded
        extra = (
            {"token_type_ids": inputs.decoder_token_type_ids}
            if inputs.decoder_token_type_ids is not None
            else {}
        )
        decoded = self.decoder_stack(
            input_ids=inputs.decoder_input_ids,
            attention_mask=inputs.decoder_attention_mask,
            encoder_hidden_states=cross,
            encoder_attention_mask=inputs.attention_mask,
            **extra,
        ).last_hidden_state  # (n, T, H)
        rows = torch.arange(decoded.shape[0], device=decoded.device)
        scores = self.rank_head(decoded[rows, inputs.last]).squeeze(-1).float()  # (n,)
        return Seq2SeqRankerOutput(scores, decoded, encoded)

    def score(self, query, query_len, doc, doc_len) -> torch.Tensor:  # (n,)
        """One score per (query, document) row; what every ranking objective and ``rerank`` call."""
        return self(self.pack(query, query_len, doc, doc_len)).scores

    def generation_logits(self, inputs: Seq2SeqInputs) -> torch.Tensor:  # (n, T, V)
        """The wrapped model's own next-token logits at every decoder position (its LM head and biases)."""
        return self.model(**inputs.model_kwargs(), use_cache=False).logits

    def generation_loss(
        self, source, source_len, target, target_len, reduction: Reduction = "sum"
    ) -> torch.Tensor:
        """GDMTL eq. 5 on the decoder: −log P(labelₜ | source, labels before t) over each framed target
        (``[CLS] q [SEP]``: what Hugging Face's ``labels=`` would learn). ``sum``: per-target sums averaged
        over the targets that have a token; ``mean``: the mean over all label tokens (Hugging Face's loss).
        (n, Ls), (n, Lt) right-padded ids with their (n,) lengths."""
        inputs = self.generation_inputs(source, source_len, target, target_len)
        logits = self.generation_logits(inputs).float()  # (n, T, V)
        labels = inputs.labels
        if not bool((labels != -100).any()):  # no target token in this batch; keep the graph for DDP
            return logits.sum() * 0.0
        nll = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="sum")
        if reduction == "mean":
            return nll / (labels != -100).sum()
        return nll / (target_len > 0).sum()


def read_config(path: str | Path) -> Seq2SeqRankerConfig | None:
    """The config of a folder saved by ``Seq2SeqRanker.save_pretrained``, or None for any other folder."""
    folder = Path(path)
    marker = folder / "auxir.json"
    if not marker.is_file():
        return None
    if json.loads(marker.read_text(encoding="utf-8")).get("format") != FORMAT["format"]:
        return None
    file = folder / CONFIG_FILE
    try:
        return Seq2SeqRankerConfig.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{file}: expected a Seq2SeqRankerConfig as JSON, found {error}") from None


def resolve_warm_start(path: str, warm_start: str) -> Literal["seq2seq", "bert2bert"]:
    """``seq2seq`` for an encoder-decoder checkpoint, ``bert2bert`` for an encoder; ``auto`` picks."""
    from transformers import AutoConfig

    checked = check_model_available(path)
    try:
        hf_config = AutoConfig.from_pretrained(
            checked, local_files_only=hub_offline(), trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"cannot load model {path!r}: {' '.join(str(error).split())[:400]}") from error
    is_seq2seq = bool(getattr(hf_config, "is_encoder_decoder", False))
    if warm_start == "auto":
        return "seq2seq" if is_seq2seq else "bert2bert"
    if warm_start == "seq2seq" and not is_seq2seq:
        raise ValueError(
            f"architecture.warm_start 'seq2seq': expected an encoder-decoder checkpoint, found {path!r}, a "
            f"{hf_config.model_type} encoder; use warm_start bert2bert (or auto) to build BERT2BERT from it"
        )
    if warm_start == "bert2bert" and is_seq2seq:
        raise ValueError(
            f"architecture.warm_start 'bert2bert': expected an encoder checkpoint, found {path!r}, a "
            f"{hf_config.model_type} encoder-decoder; use warm_start seq2seq (or auto)"
        )
    return warm_start


def _bert2bert(path: str):
    """``EncoderDecoderModel`` of the encoder at ``path`` and a causal copy of it with new cross-attention
    (what ``EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)`` builds), with the names of the
    parameters that start random."""
    from transformers import AutoModel, AutoModelForCausalLM, EncoderDecoderModel

    tokenizer, encoder = load_tokenizer_and_model(path, AutoModel)
    _, (decoder, info) = load_tokenizer_and_model(
        path, AutoModelForCausalLM, is_decoder=True, add_cross_attention=True, output_loading_info=True
    )
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    template = PairTemplate.from_tokenizer(tokenizer)
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else (template.prefix or (None,))[0]
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None:
        raise ValueError(
            f"cannot build BERT2BERT from {path!r}: its tokenizer has no [CLS]/[SEP] (or first/end) token to "
            "start and end the decoder"
        )
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = start
        config.pad_token_id = template.pad_id
        config.eos_token_id = end
    new = {f"model.decoder.{k}" for k in info.get("missing_keys", [])}
    return tokenizer, model, new


def _layers(module: nn.Module) -> nn.ModuleList:
    blocks = getattr(module, "block", None)  # T5's stacks
    return blocks if isinstance(blocks, nn.ModuleList) and len(blocks) else encoder_layers(module)


def _cut(ids: torch.Tensor, lengths: torch.Tensor, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded rows cut to their first ``limit`` tokens: (n, ≤ limit) ids, (n,) lengths."""
    return ids[:, : max(limit, 1)], lengths.clamp(max=max(limit, 0))
