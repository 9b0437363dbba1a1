"""Cross-encoder reranker: any Hugging Face encoder, a pluggable scorer and a token-prediction head.

A pair is scored in one pass of the encoder; with a passage scorer (PARADE) a document is split into
passages, every (query, passage) pair of a batch is encoded in one pass, and the scorer aggregates each
document's passages.

Saved as a standard sequence-classification checkpoint (``config.json`` + ``model.safetensors`` +
tokenizer) so Hugging Face and sentence-transformers load it directly. auxir's own settings live under
the ``auxir`` key of ``config.json`` and the extra heads in ``auxir_heads.safetensors``; both round-trip
through ``save_pretrained``/``from_pretrained``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from auxir.io import atomic_directory
from auxir.models.attention_masks import for_attention, mixed_attention_mask
from auxir.models.hf import encoder_layers, load_tokenizer_and_model, resolve_model_name
from auxir.models.pair_template import PairTemplate
from auxir.models.scorers import PassageScorer, PassageSplit, build_scorer
from auxir.models.token_head import TokenHead

HEADS_FILE = "auxir_heads.safetensors"


@dataclass
class CrossEncoderConfig:
    """Architecture settings of a ``CrossEncoder``; stored in ``config.json`` under ``auxir``."""

    scorer: str = "cls"
    scorer_params: dict[str, Any] = field(default_factory=dict)
    token_head: Literal["tied", "untied"] = "tied"
    token_head_transform: bool = False
    max_length: int = 256
    max_query_length: int = 32
    # GDMTL feeds the passage first and the query second; monoBERT the other way round.
    segment_order: Literal["query_first", "doc_first"] = "query_first"
    # Text put before the first segment of every ranking pair, as a task identifier (GDMTL §5.2: "rank:");
    # "" puts none. It takes its tokens from the document's share of max_length.
    task_prefix: str = ""
    # The checkpoint's pooler (dense + tanh over [CLS]) before the score layer. "auto" skips one that was
    # never trained (sentence-transformers checkpoints: bias exactly 0); "identity" restarts it at the
    # identity (still tanh; the checkpoint stays a plain HF sequence-classification model).
    pooler: Literal["auto", "keep", "identity", "skip"] = "auto"
    # Add the bi-encoder signal to the head's score: w·cos(mean-pooled query, mean-pooled document), read
    # from the pair's own forward pass ("joint") or from the query and document encoded alone ("separate",
    # what the checkpoint was trained for as a sentence encoder). w is learned, starting at bi_encoder_scale.
    bi_encoder: Literal["none", "joint", "separate"] = "none"
    bi_encoder_scale: float = 20.0
    # Queries longer than max_query_length (query by document: whole documents as queries). "truncate" keeps
    # the first max_query_length tokens; "max" / "mean" split the query into passages of max_query_length
    # tokens every query_stride tokens (None: no overlap), at most max_query_passages, score every
    # (query passage, document) pair and take the max / mean.
    long_queries: Literal["truncate", "max", "mean"] = "truncate"
    query_stride: int | None = None
    max_query_passages: int = 8

    def __post_init__(self) -> None:
        stride = self.query_stride
        if stride is not None and not 1 <= stride <= self.max_query_length or self.max_query_passages < 1:
            raise ValueError(
                "long queries need 1 ≤ query_stride ≤ max_query_length and max_query_passages ≥ 1; found "
                f"query_stride={stride}, max_query_length={self.max_query_length}, "
                f"max_query_passages={self.max_query_passages}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CrossEncoderConfig:
        valid = {f.name for f in fields(cls)}
        unknown = set(values) - valid
        if unknown:
            raise ValueError(f"unknown CrossEncoderConfig field(s) {sorted(unknown)}; valid: {sorted(valid)}")
        return cls(**values)


@dataclass
class PairInputs:
    input_ids: torch.Tensor  # (n, W)
    attention_mask: torch.Tensor  # (n, W)
    token_type_ids: torch.Tensor  # (n, W)
    query_start: torch.Tensor  # (n, 1) position of the first query token
    doc_start: torch.Tensor  # (n, 1) position of the first document token
    query_len: torch.Tensor  # (n,)
    doc_len: torch.Tensor  # (n,)

    def segment_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(self.input_ids.shape[1], device=self.input_ids.device)  # (W,)
        query_mask = (pos >= self.query_start) & (pos < self.query_start + self.query_len.unsqueeze(1))
        doc_mask = (pos >= self.doc_start) & (pos < self.doc_start + self.doc_len.unsqueeze(1))
        return query_mask, doc_mask  # (n, W) each


@dataclass
class CrossEncoderOutput:
    scores: torch.Tensor  # (n,)
    last_hidden_state: torch.Tensor  # (n, W, H)


@dataclass
class MixedAttentionOutput:
    last_hidden_state: torch.Tensor  # (n, W, H)
    target_start: torch.Tensor  # (n, 1) position of the first target token


class FirstToken(nn.Module):
    """Stands in for a skipped pooler: the last layer's first ([CLS]) vector, unchanged."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:  # (n, W, H) -> (n, H)
        return hidden_states[:, 0]


def pooler_was_trained(backbone: nn.Module, newly_initialised: set[str], path: str) -> bool:
    """A pooler that was never trained: new in this load, an exactly-zero bias (no update ever moved it;
    the sentence-transformers checkpoints look like this), or a sentence-transformers folder, whose
    training reads mean-pooled states and never the pooler."""
    pooler = getattr(backbone.base_model, "pooler", None)
    if pooler is None or not list(pooler.parameters()):
        return True
    if any(".pooler." in f".{name}" for name in newly_initialised):
        return False
    biases = [p for n, p in pooler.named_parameters() if n.endswith("bias")]
    if biases and all(bool((b == 0).all()) for b in biases):
        return False
    return not (Path(path) / "modules.json").exists()


class CrossEncoder(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        tokenizer,
        config: CrossEncoderConfig,
        new_parameters: set[str] = frozenset(),
    ):
        super().__init__()
        self.backbone = backbone  # an AutoModelForSequenceClassification with num_labels=1
        self.tokenizer = tokenizer
        self.config = config
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self._text_ids: dict[str, tuple[int, ...]] = {}
        hf_config = backbone.config
        self.scorer = build_scorer(
            config.scorer, hf_config.hidden_size, hf_config.num_hidden_layers, config.scorer_params
        )
        self.scorer.check_fits(config.max_query_length, self.pair_doc_tokens)
        if config.long_queries != "truncate" and (
            self.passage_split is not None or config.bi_encoder == "separate"
        ):
            raise ValueError(
                f"long_queries={config.long_queries!r} cannot be combined with a passage scorer or "
                "bi_encoder='separate' (both would read the whole query at once); use long_queries: truncate"
            )
        if self.passage_split is not None and config.bi_encoder != "none":
            raise ValueError(
                f"bi_encoder={config.bi_encoder!r} cannot be combined with the passage scorer "
                f"{config.scorer!r}: the bi-encoder term reads one pass over the whole document; "
                "set bi_encoder: none"
            )
        embeddings = backbone.get_input_embeddings()
        self.token_head = TokenHead(
            hf_config.hidden_size,
            embeddings.num_embeddings,
            tied_to=embeddings if config.token_head == "tied" else None,
            transform=config.token_head_transform,
        )
        # w of the bi-encoder signal (a parameter even when unused, so every checkpoint has the same keys)
        self.bi_encoder_weight = nn.Parameter(torch.tensor(float(config.bi_encoder_scale)))
        self._new_parameters = set(new_parameters)
        self._apply_pooler(config.pooler)

    def _apply_pooler(self, mode: str) -> None:
        base = self.backbone.base_model
        pooler = getattr(base, "pooler", None)
        if pooler is None or mode == "keep":
            return
        if mode == "skip":
            base.pooler = FirstToken()
        elif mode == "identity":
            dense = pooler.dense
            with torch.no_grad():
                dense.weight.copy_(torch.eye(*dense.weight.shape))
                dense.bias.zero_()
            self._new_parameters |= {
                f"backbone.{n}" for n, p in self.backbone.named_parameters() if ".pooler." in f".{n}"
            }
        else:
            raise ValueError(f"pooler must be resolved before use, found {mode!r}")

    # ---- construction and persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, config: CrossEncoderConfig | None = None
    ) -> CrossEncoder:
        """Load an auxir checkpoint, or start a new reranker from any encoder (new heads start random)."""
        from transformers import AutoModelForSequenceClassification

        path = resolve_model_name(str(name_or_path))
        tokenizer, (backbone, info) = load_tokenizer_and_model(
            path, AutoModelForSequenceClassification, num_labels=1, output_loading_info=True
        )
        # Recent transformers load a checkpoint in its stored dtype: an fp16 file would give fp16 weights,
        # which AdamW cannot update (steps underflow). Keep fp32 master weights; autocast does bf16.
        backbone = backbone.float()
        stored = getattr(backbone.config, "auxir", None)
        if config is None:
            config = CrossEncoderConfig.from_dict(stored) if stored else CrossEncoderConfig()
        newly_initialised = set(info.get("missing_keys", []))
        if config.pooler == "auto":
            trained = pooler_was_trained(backbone, newly_initialised, path)
            config = replace(config, pooler="keep" if trained else "skip")
        heads = Path(path) / HEADS_FILE
        has_heads = bool(stored) and heads.exists()
        new = {f"backbone.{k}" for k in newly_initialised}
        model = cls(backbone, tokenizer, config, new)
        if has_heads:
            state = load_file(str(heads))
            # Another scorer over a trained checkpoint (CEDR trains its scorers on a fine-tuned monoBERT):
            # its weights start new, the encoder and the other heads load.
            new_scorer = stored.get("scorer", "cls") != config.scorer
            if new_scorer:
                state = {k: v for k, v in state.items() if not k.startswith("scorer.")}
                model._new_parameters |= {f"scorer.{n}" for n, _ in model.scorer.named_parameters()}
            missing, unexpected = model.heads().load_state_dict(state, strict=False)
            if unexpected or [
                k
                for k in missing
                if not k.startswith("token_head._tied")
                and k != "bi_encoder_weight"
                and not (new_scorer and k.startswith("scorer."))
            ]:
                raise ValueError(
                    f"{heads}: head weights do not match the config (missing {missing}, unexpected {unexpected})"
                )
        else:
            model._new_parameters |= {n for n, _ in model.named_parameters() if not n.startswith("backbone.")}
        return model

    @property
    def passage_split(self) -> PassageSplit | None:
        """How documents are split into passages, or None: one pair per document."""
        return self.scorer.passages if isinstance(self.scorer, PassageScorer) else None

    @property
    def query_split(self) -> PassageSplit:
        """How a query is cut into passages of ``max_query_length`` tokens (one passage for ``truncate``)."""
        cfg = self.config
        length = cfg.max_query_length
        passages = 1 if cfg.long_queries == "truncate" else cfg.max_query_passages
        return PassageSplit(length, cfg.query_stride or length, passages)

    @property
    def max_query_tokens(self) -> int:
        """Query tokens the model reads (what a query token cache keeps)."""
        return self.query_split.max_doc_tokens

    @property
    def pair_doc_tokens(self) -> int:
        """Document tokens that fit in one pair beside a full-length query, the special tokens and the
        task prefix."""
        prefix = len(self.text_ids(self.config.task_prefix))
        return self.config.max_length - self.config.max_query_length - self.template.num_special - prefix

    def text_ids(self, text: str) -> tuple[int, ...]:
        """Token ids of a short fixed text (a task prefix), without special tokens; tokenised once."""
        if text not in self._text_ids:
            self._text_ids[text] = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._text_ids[text]

    @property
    def max_doc_tokens(self) -> int:
        """Document tokens the model reads: what fits in one pair, or what a passage scorer's passages
        cover. Token caches need keep no more (and should keep this many)."""
        split = self.passage_split
        return split.max_doc_tokens if split is not None else self.pair_doc_tokens

    def new_parameter_names(self) -> set[str]:
        """Parameters that start random in this model (heads, a new score layer): they may take their
        own learning rate, and a head warm-up trains only them."""
        names = {n for n, _ in self.named_parameters()}
        return self._new_parameters & names

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last encoder layer's parameters: where the gradients of the objectives meet and are compared."""
        layers = encoder_layers(self.backbone.base_model)
        return [p for p in layers[-1].parameters() if p.requires_grad]

    def heads(self) -> nn.ModuleDict:
        return _Heads(self)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the checkpoint into a temporary folder and move it into place only once complete.

        sentence-transformers' ``CrossEncoder`` reads the checkpoint as a plain sequence-classification model;
        the files say what it needs to score as auxir does: no activation on the logit (its default for one
        label is a sigmoid) and ``max_length`` as the tokenizer's ``model_max_length`` (its default: the
        position embeddings, 512). That reproduces auxir's scores only where the score *is* that model's
        logit over (query, document): the ``cls`` scorer, query first, the checkpoint's own pooler and no
        bi-encoder term. ``auxir_sentence_transformers_compatible`` in ``config.json`` says whether this
        checkpoint is such a one (and ``auxir_sentence_transformers_note`` why not); it sits beside the
        ``auxir`` settings, not among them, so that they still load as a ``CrossEncoderConfig``. Pairs
        longer than ``max_length`` differ either way: auxir cuts the query at ``max_query_length`` and
        fills the rest with the document, sentence-transformers truncates the longer text first.
        """
        config = self.config
        reasons = [
            reason
            for reason, applies in (
                (f"the {config.scorer!r} scorer is auxir's own head", config.scorer != "cls"),
                (f"pooler={config.pooler!r} skips the pooler the checkpoint holds", config.pooler == "skip"),
                (
                    f"bi_encoder={config.bi_encoder!r} adds a term outside the model",
                    config.bi_encoder != "none",
                ),
                ("segment_order='doc_first' puts the document first", config.segment_order != "query_first"),
                (f"task_prefix={config.task_prefix!r} is put before the pair", bool(config.task_prefix)),
            )
            if applies
        ]
        with atomic_directory(directory) as tmp:
            stored = asdict(self.config)
            if (
                stored["pooler"] == "identity"
            ):  # the identity was the start; the trained pooler is kept on reload
                stored["pooler"] = "keep"
            self.backbone.config.auxir = stored
            self.backbone.config.architectures = [type(self.backbone).__name__]
            self.backbone.config.sentence_transformers = {"activation_fn": "torch.nn.modules.linear.Identity"}
            self.backbone.config.auxir_sentence_transformers_compatible = not reasons
            self.backbone.config.auxir_sentence_transformers_note = (
                "sentence-transformers' CrossEncoder scores differently from auxir: " + "; ".join(reasons)
                if reasons
                else "sentence-transformers' CrossEncoder reproduces auxir's scores on pairs within max_length"
            )
            self.backbone.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            tokenizer_file = tmp / "tokenizer_config.json"
            tokenizer_config = json.loads(tokenizer_file.read_text(encoding="utf-8"))
            tokenizer_config["model_max_length"] = config.max_length
            tokenizer_file.write_text(json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n")
            state = {k: v.detach().contiguous().cpu() for k, v in self.heads().state_dict().items()}
            save_file(state, str(tmp / HEADS_FILE))
            (tmp / "auxir.json").write_text(json.dumps({"format": "auxir-cross-encoder", "version": 1}))

    # ---- forward ----------------------------------------------------------------------------------
    def query_in_pair(self, query, query_len) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of each query that one packed pair holds: its first ``max_query_length`` tokens (a long
        query's other passages are scored as pairs of their own). (q, L) ids and (q,) lengths."""
        return self.query_split.first(query, query_len)

    def document_in_pair(self, doc, doc_len) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of each document that one packed pair holds: all of it, or with a passage scorer its
        first passage. (d, L) ids and (d,) lengths."""
        split = self.passage_split
        return (doc, doc_len) if split is None else split.first(doc, doc_len)

    def pack(self, query, query_len, doc, doc_len) -> PairInputs:
        """Frame query and document token ids as one input per row, in the configured order.

        With a passage scorer a row holds the document's first passage (``document_in_pair``): ``forward``
        scores it as a document of one passage, and the masked-token objectives read it as the context."""
        doc, doc_len = self.document_in_pair(doc, doc_len)
        query, query_len = self.query_in_pair(query, query_len)
        prefix = self.text_ids(self.config.task_prefix)
        if self.config.segment_order == "query_first":
            first, first_len = prepend(prefix, query, query_len)
            packed = self.template.pack(first, first_len, doc, doc_len)
            query_start = torch.full_like(packed.second_offset, packed.first_offset + len(prefix))
            doc_start = packed.second_offset
        else:
            first, first_len = prepend(prefix, doc, doc_len)
            packed = self.template.pack(first, first_len, query, query_len)
            doc_start = torch.full_like(packed.second_offset, packed.first_offset + len(prefix))
            query_start = packed.second_offset
        return PairInputs(
            packed.input_ids,
            packed.attention_mask,
            packed.token_type_ids,
            query_start,
            doc_start,
            query_len,
            doc_len,
        )

    def _encode(self, inputs: PairInputs):
        return self.backbone(
            input_ids=inputs.input_ids,
            attention_mask=inputs.attention_mask,
            token_type_ids=inputs.token_type_ids,
            output_hidden_states=True,
        )

    def forward(self, inputs: PairInputs) -> CrossEncoderOutput:
        out = self._encode(inputs)
        last = out.hidden_states[-1]  # (n, W, H)
        needs_masks = self.scorer.needs_hidden_states or self.config.bi_encoder == "joint"
        hidden_states = out.hidden_states if self.scorer.needs_hidden_states else None
        query_mask, doc_mask = inputs.segment_masks() if needs_masks else (None, None)
        scores = self.scorer(
            out.logits.squeeze(-1), hidden_states, inputs.attention_mask, query_mask, doc_mask
        ).float()
        if self.config.bi_encoder == "joint":
            cosine = F.cosine_similarity(_masked_mean(last, query_mask), _masked_mean(last, doc_mask), dim=-1)
            scores = scores + self.bi_encoder_weight * cosine.float()
        return CrossEncoderOutput(scores=scores, last_hidden_state=last)

    def mixed_attention(self, source, source_len, target, target_len) -> MixedAttentionOutput:
        """Last-layer states of ``[CLS] source [SEP] target [SEP]`` (the tokenizer's pair frame) under
        GDMTL's mixed attention (§4.2, eq. 7): the source attends bidirectionally to itself, the target to
        the source and causally to itself (``attention_masks.mixed_attention_mask``). The state at position
        t sees nothing after t in the target, so it can predict the token at t + 1 (the last frame token
        before the target predicts the first target token). (n, Ls) and (n, Lt) right-padded ids with
        their (n,) lengths. The ranking path (``forward``) keeps plain bidirectional attention.
        """
        packed = self.template.pack(source, source_len, target, target_len)
        mask = mixed_attention_mask(packed.attention_mask, packed.second_offset)  # (n, 1, W, W) bool
        # Hugging Face passes a 4-D mask to the attention function as it is: sdpa reads booleans, eager
        # adds the mask to its scores (the dtype of its embeddings, as the library's own masks).
        implementation = self.backbone.config._attn_implementation
        dtype = self.backbone.get_input_embeddings().weight.dtype
        out = self.backbone.base_model(
            input_ids=packed.input_ids,
            attention_mask=for_attention(mask, implementation, dtype),
            token_type_ids=packed.token_type_ids,
        )
        return MixedAttentionOutput(out.last_hidden_state, packed.second_offset)

    def embed(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # (n, L), (n,) -> (n, H)
        """One text alone, ``prefix text suffix`` (as the tokenizer frames a single text), mean-pooled over
        every attended position: how sentence-transformers' mean-pooling checkpoints embed."""
        packed = self.template.pack_single(ids, lengths)
        out = self.backbone.base_model(
            input_ids=packed.input_ids,
            attention_mask=packed.attention_mask,
            token_type_ids=packed.token_type_ids,
        )
        return _masked_mean(out.last_hidden_state, packed.attention_mask.bool())

    def score(self, query, query_len, doc, doc_len) -> torch.Tensor:  # (n,)
        """One score per (query, document) row; what every objective and ``rerank`` call."""
        if self.passage_split is not None:
            return self._score_passages(query, query_len, doc, doc_len)
        if self.config.long_queries != "truncate":
            return self._score_query_passages(query, query_len, doc, doc_len)
        scores = self(self.pack(query, query_len, doc, doc_len)).scores
        if self.config.bi_encoder == "separate":
            cosine = F.cosine_similarity(self.embed(query, query_len), self.embed(doc, doc_len), dim=-1)
            scores = scores + self.bi_encoder_weight * cosine.float()
        return scores

    def _score_passages(self, query, query_len, doc, doc_len) -> torch.Tensor:  # (n,)
        """Every passage of every document in one encoder pass, then the scorer over each document's."""
        passages = self.passage_split.split(doc, doc_len)  # R rows in all
        rows = passages.doc_index
        inputs = self.pack(query[rows], query_len[rows], passages.tokens, passages.lengths)
        cls = self._encode(inputs).hidden_states[-1][:, 0]  # (R, H)
        return self.scorer.aggregate(passages.grid(cls), passages.mask).float()  # (n,)

    def _score_query_passages(self, query, query_len, doc, doc_len) -> torch.Tensor:  # (n,)
        """Every (query passage, document) pair in one pass, then the max or mean over each row's passages."""
        passages = self.query_split.split(query, query_len)  # R rows in all
        rows = passages.doc_index
        scores = self(self.pack(passages.tokens, passages.lengths, doc[rows], doc_len[rows])).scores  # (R,)
        grid = passages.grid(scores.unsqueeze(-1)).squeeze(-1)  # (n, P), 0 where a query has no passage
        if self.config.long_queries == "max":
            return grid.masked_fill(~passages.mask, float("-inf")).amax(dim=1)
        return grid.sum(dim=1) / passages.mask.sum(dim=1)

    # ---- convenience API (as sentence-transformers' CrossEncoder) ---------------------------------
    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 64) -> list[float]:
        """Scores of ``(query, document)`` text pairs, in input order, as :func:`auxir.reranking.rerank`
        scores them: the query cut at ``max_query_length`` tokens, the document at what is left of
        ``max_length``. Runs in eval mode under ``torch.inference_mode`` on the model's device and dtype;
        the previous train/eval mode is restored afterwards. ``docs/python-api.md`` has a runnable example.
        """
        from auxir.data.token_cache import pad_stack
        from auxir.reranking import token_caches

        if batch_size < 1:
            raise ValueError(f"CrossEncoder.predict: batch_size must be ≥ 1, got {batch_size}")
        pairs = [(str(q), str(d)) for q, d in pairs]
        if not pairs:
            return []
        # Texts are their own cache keys: each distinct text is tokenised once.
        queries, docs = token_caches(self)
        queries.add((q for q, _ in pairs), str)
        docs.add((d for _, d in pairs), str)
        device = next(self.parameters()).device
        pad = self.template.pad_id
        scores: list[float] = []
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(pairs), batch_size):
                    chunk = pairs[start : start + batch_size]
                    q, q_len = pad_stack([queries[text] for text, _ in chunk], pad)  # (b, Lq), (b,)
                    d, d_len = pad_stack([docs[text] for _, text in chunk], pad)  # (b, Ld), (b,)
                    out = self.score(*(torch.from_numpy(a).to(device) for a in (q, q_len, d, d_len)))
                    scores += out.float().cpu().tolist()
        finally:
            self.train(was_training)
        return scores

    def rank(
        self, query: str, docs: list[str], top_k: int | None = None, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """``docs`` ranked for ``query``: ``[{"corpus_id": index in docs, "score": s}, ...]``, best first
        (ties keep input order), the first ``top_k`` only if given, as sentence-transformers'
        ``CrossEncoder.rank`` returns them."""
        if top_k is not None and top_k < 1:
            raise ValueError(f"CrossEncoder.rank: top_k must be ≥ 1 or None, got {top_k}")
        scores = self.predict([(query, doc) for doc in docs], batch_size=batch_size)
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [{"corpus_id": i, "score": scores[i]} for i in ranked[:top_k]]


class _Heads(nn.ModuleDict):
    """Everything that is not the Hugging Face backbone, as one state dict (``auxir_heads.safetensors``)."""

    def __init__(self, model: CrossEncoder):
        super().__init__({"scorer": model.scorer, "token_head": model.token_head})
        self.bi_encoder_weight = model.bi_encoder_weight


def prepend(
    prefix: tuple[int, ...], ids: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``prefix`` before every right-padded row of ``ids`` (n, L): (n, len(prefix) + L) ids, (n,) lengths."""
    if not prefix:
        return ids, lengths
    head = torch.tensor(prefix, dtype=ids.dtype, device=ids.device).expand(ids.shape[0], len(prefix))
    return torch.cat([head, ids], dim=1), lengths + len(prefix)


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # (n, W, H), (n, W) -> (n, H)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
