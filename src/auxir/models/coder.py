"""CODER: a query encoder fine-tuned to rerank frozen, precomputed document embeddings (Zerveas et al., 2022).

§2.1 of the paper, top to bottom: the query encoder ζ (any Hugging Face encoder, started from the bi-encoder
whose document side made the embeddings) gives token vectors ``Z`` (eq. 1), optionally projected to the
documents' dimension; the aggregation ``g`` takes the first token or the mean; the scores of the N candidate
embeddings ``X`` are ``s = X · g(Z)`` (eq. 2). Appendix A.3's alternative scorer, a transformer over the
query and the candidates **without positional encodings** (so permuting the candidates permutes the scores),
is ``scorer="transformer"``; it adds a learned correction to eq. 2 whose output layer starts at zero, so a
new model scores exactly as eq. 2 until training moves it.

Saved, the query encoder is a sentence-transformers model (``modules.json``: Transformer, Pooling, Dense
when projected, Normalize when normalised), so ``SentenceTransformer(path).encode(queries)`` gives the
query vectors; auxir's settings are in ``auxir.json`` and the projection and scorer weights in
``auxir_heads.safetensors``.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from auxir.data.token_cache import pad_stack
from auxir.io import atomic_directory
from auxir.models.hf import encoder_layers, load_tokenizer_and_model, resolve_model_name
from auxir.models.pair_template import PairTemplate
from auxir.retrieval.dense import sentence_transformers_settings

AUXIR_FILE = "auxir.json"
HEADS_FILE = "auxir_heads.safetensors"
FORMAT = "auxir-coder"


@dataclass
class CoderConfig:
    """The ``architecture`` section of a CODER recipe: the model, its document embeddings and how it ranks."""

    doc_encoder: str | None = (
        None  # the base model M_D that encodes the corpus once (None: the recipe's model)
    )
    embeddings: str | None = None  # a precomputed EmbeddingStore directory to use instead of encoding
    embeddings_dtype: Literal["float16", "float32"] = "float16"  # the store, on disk and in memory
    cache_embeddings: bool = True  # reuse (and keep) the corpus encoding in $AUXIR_CACHE for later runs
    num_candidates: int = 1000  # N first-stage candidates a query (paper: 1000); at most data.first_stage_k
    inject_positives: bool = True  # judged positives the first stage missed replace the lowest candidates
    pooling: Literal["first", "mean"] | None = (
        None  # g(Z); None: the base model's sentence-transformers pooling
    )
    normalize: bool | None = (
        None  # L2-normalise g(Z); None: as the base model (sentence-transformers Normalize)
    )
    scorer: Literal["dot", "transformer"] = "dot"  # eq. 2, or eq. 2 plus a set transformer (Appendix A.3)
    scorer_layers: int = 2
    scorer_heads: int = 8
    scorer_dropout: float = 0.1
    max_query_length: int = 32  # query tokens, special tokens not counted (paper: 32)
    evaluate: Literal["rerank", "retrieve"] = "rerank"  # rerank first-stage candidates, or FAISS retrieval
    retrieve_k: int = 1000  # documents a query when evaluate is "retrieve"

    def __post_init__(self) -> None:
        for name in ("num_candidates", "scorer_layers", "scorer_heads", "max_query_length", "retrieve_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"CoderConfig.{name}: expected an integer >= 1, found {value!r}")
        if not 0.0 <= self.scorer_dropout < 1.0:
            raise ValueError(
                f"CoderConfig.scorer_dropout: expected a value in [0, 1), found {self.scorer_dropout!r}"
            )
        if self.evaluate == "retrieve" and self.scorer != "dot":
            raise ValueError(
                f"CoderConfig: evaluate='retrieve' searches an index by inner product and needs scorer='dot', "
                f"found scorer={self.scorer!r} (a transformer scorer can only rerank candidates)"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CoderConfig:
        valid = {f.name for f in fields(cls)}
        unknown = set(values) - valid
        if unknown:
            raise ValueError(f"unknown CoderConfig field(s) {sorted(unknown)}; valid: {sorted(valid)}")
        return cls(**values)


@dataclass
class CoderOutput:
    scores: torch.Tensor  # (B, N) float32; -inf at masked candidates
    query_embeddings: torch.Tensor  # (B, D) g(Z'), in the documents' space


class CandidateSetScorer(nn.Module):
    """Transformer blocks over ``[g(Z); x_1 … x_N]`` with no positional encodings (CODER, Appendix A.3).

    Only a learned type vector tells the query from the documents, so the blocks see a set: permuting the
    candidates permutes the outputs. Each candidate's output becomes a score correction through a linear
    layer that starts at zero.
    """

    def __init__(self, dim: int, layers: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(
                f"CoderConfig.scorer_heads: expected a divisor of the embedding dimension {dim}, found {heads}"
            )
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.type_embeddings = nn.Parameter(torch.zeros(2, dim))  # 0: query, 1: document
        self.out = nn.Linear(dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, query: torch.Tensor, docs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # query (B, D), docs (B, N, D), mask (B, N) -> (B, N)
        tokens = torch.cat([query.unsqueeze(1) + self.type_embeddings[0], docs + self.type_embeddings[1]], 1)
        ignore = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)  # (B, 1 + N) True = padding
        hidden = self.blocks(tokens, src_key_padding_mask=ignore)  # (B, 1 + N, D)
        return self.out(hidden[:, 1:]).squeeze(-1)  # (B, N)


class CoderModel(nn.Module):
    """Query encoder + aggregation + candidate scorer; the document embeddings come with each batch."""

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer,
        config: CoderConfig,
        doc_dim: int,
        new_parameters: set[str] = frozenset(),
    ):
        super().__init__()
        if config.pooling is None or config.normalize is None:
            raise ValueError(
                "CoderModel: pooling and normalize must be resolved (CoderModel.from_pretrained does it)"
            )
        self.encoder = encoder  # a Hugging Face AutoModel (no task head)
        self.tokenizer = tokenizer
        self.config = config
        self.doc_dim = doc_dim
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self._token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        hidden = encoder.config.hidden_size
        # eq. 1's z'_t: a projection only where the documents live in another dimension than the encoder
        self.projection = nn.Linear(hidden, doc_dim) if hidden != doc_dim else None
        self.scorer = (
            CandidateSetScorer(doc_dim, config.scorer_layers, config.scorer_heads, config.scorer_dropout)
            if config.scorer == "transformer"
            else None
        )
        self._new_parameters = set(new_parameters)

    # ---- construction and persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, config: CoderConfig | None = None, doc_dim: int | None = None
    ) -> CoderModel:
        """Load a saved CODER model, or start one from any encoder (e.g. the base bi-encoder's query side).

        A saved model keeps its aggregation (``pooling``, ``normalize``) and document dimension (a
        ``doc_dim`` given must agree); its other settings are ``config`` when given, else its own, and its
        saved projection and scorer weights must fit them. From a base model, ``pooling``/``normalize``
        left ``None`` are read from its sentence-transformers files (else first token, not normalised),
        ``doc_dim`` defaults to the encoder's width, and the projection and scorer, if any, start random.
        """
        path = resolve_model_name(str(name_or_path))
        saved = _read_saved(Path(path))
        tokenizer, encoder = load_tokenizer_and_model(path)
        # Keep fp32 master weights whatever the checkpoint's dtype; autocast does bf16.
        encoder = encoder.float()
        if saved is not None:
            stored = CoderConfig.from_dict(saved["config"])
            if doc_dim is not None and doc_dim != saved["doc_dim"]:
                raise ValueError(
                    f"{path}: expected a CODER model for document embeddings of dimension {doc_dim}, "
                    f"found one for dimension {saved['doc_dim']}"
                )
            # The resolved aggregation is part of what was trained; the rest may come from a new recipe.
            config = replace(config, pooling=stored.pooling, normalize=stored.normalize) if config else stored
            model = cls(encoder, tokenizer, config, saved["doc_dim"])
            heads = Path(path) / HEADS_FILE
            state = load_file(str(heads)) if heads.exists() else {}
            missing, unexpected = model.heads().load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(
                    f"{heads}: expected the weights of the configured projection and scorer, "
                    f"found missing {sorted(missing)} and unexpected {sorted(unexpected)}"
                )
            return model
        config = config or CoderConfig()
        settings = sentence_transformers_settings(path) if Path(path).is_dir() else {}
        pooling = config.pooling or ("mean" if settings.get("pooling") == "mean" else "first")
        normalize = settings.get("normalize", False) if config.normalize is None else config.normalize
        config = replace(config, pooling=pooling, normalize=normalize)
        model = cls(encoder, tokenizer, config, doc_dim or encoder.config.hidden_size)
        model._new_parameters = {n for n, _ in model.named_parameters() if not n.startswith("encoder.")}
        return model

    def heads(self) -> nn.ModuleDict:
        """The parameters outside the Hugging Face encoder (projection, scorer) as one state dict."""
        return nn.ModuleDict(
            {k: m for k, m in (("projection", self.projection), ("scorer", self.scorer)) if m is not None}
        )

    def new_parameter_names(self) -> set[str]:
        """Parameters that start random (projection, scorer): their own learning rate, and head warm-up."""
        return self._new_parameters & {n for n, _ in self.named_parameters()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last encoder layer's parameters: where the objectives' gradients meet."""
        return [p for p in encoder_layers(self.encoder)[-1].parameters() if p.requires_grad]

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the query encoder as a sentence-transformers model plus auxir's settings and heads (atomically)."""
        config = self.config
        with atomic_directory(directory) as tmp:
            self.encoder.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            modules = [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
            _write_json(
                tmp / "1_Pooling" / "config.json",
                {
                    "word_embedding_dimension": self.encoder.config.hidden_size,
                    "pooling_mode_cls_token": config.pooling == "first",
                    "pooling_mode_mean_tokens": config.pooling == "mean",
                    "pooling_mode_max_tokens": False,
                    "pooling_mode_mean_sqrt_len_tokens": False,
                },
            )
            if self.projection is not None:
                modules.append(
                    {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
                )
                _write_json(
                    tmp / "2_Dense" / "config.json",
                    {
                        "in_features": self.projection.in_features,
                        "out_features": self.projection.out_features,
                        "bias": True,
                        "activation_function": "torch.nn.modules.linear.Identity",
                    },
                )
                weights = {
                    f"linear.{k}": v.detach().contiguous().cpu()
                    for k, v in self.projection.state_dict().items()
                }
                save_file(weights, str(tmp / "2_Dense" / "model.safetensors"))
            if config.normalize:
                idx = len(modules)
                modules.append(
                    {
                        "idx": idx,
                        "name": str(idx),
                        "path": f"{idx}_Normalize",
                        "type": "sentence_transformers.models.Normalize",
                    }
                )
                (tmp / f"{idx}_Normalize").mkdir()
            _write_json(tmp / "modules.json", modules)
            special = len(self.template.prefix) + len(self.template.suffix)
            _write_json(
                tmp / "sentence_bert_config.json",
                {"max_seq_length": config.max_query_length + special, "do_lower_case": False},
            )
            _write_json(
                tmp / "config_sentence_transformers.json",
                {"similarity_fn_name": "cosine" if config.normalize else "dot"},
            )
            heads = {k: v.detach().contiguous().cpu() for k, v in self.heads().state_dict().items()}
            if heads:
                save_file(heads, str(tmp / HEADS_FILE))
            note = (
                "sentence-transformers encodes the queries as auxir does; the transformer scorer's correction "
                "of the scores is auxir's own"
                if self.scorer is not None
                else "sentence-transformers encodes the queries as auxir does; scores are their inner products "
                "with the document embeddings"
            )
            _write_json(
                tmp / AUXIR_FILE,
                {
                    "format": FORMAT,
                    "version": 1,
                    "config": asdict(config),
                    "doc_dim": self.doc_dim,
                    "note": note,
                },
            )

    # ---- forward ----------------------------------------------------------------------------------
    def encode_query_tokens(self, query: torch.Tensor, query_len: torch.Tensor) -> torch.Tensor:
        """g(Z') of each query: (B, Lq) token ids without special tokens, (B,) lengths -> (B, D) float32."""
        packed = self.template.pack_single(
            query, query_len
        )  # [CLS] q [SEP], as the tokenizer frames one text
        inputs = {"input_ids": packed.input_ids, "attention_mask": packed.attention_mask}
        if self._token_types:
            inputs["token_type_ids"] = packed.token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state  # (B, W, H) eq. 1's Z
        if self.config.pooling == "first":
            pooled = hidden[:, 0]  # (B, H)
        else:  # the mean over every attended position, special tokens included (sentence-transformers)
            weights = packed.attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, W, 1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H)
        if self.projection is not None:  # linear, so projecting the pooled vector = pooling projected z'_t
            pooled = self.projection(pooled)  # (B, D)
        pooled = pooled.float()
        return F.normalize(pooled, p=2, dim=-1) if self.config.normalize else pooled

    def score_embeddings(self, query: torch.Tensor, docs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Scores of candidates ``docs`` (B, N, D) for query vectors (B, D); ``mask`` (B, N) False = none."""
        docs = docs.float()  # the store may hold float16
        # eq. 2 in float32 even under bf16 autocast: a softmax over 1000 scores needs their small differences
        device_type = docs.device.type
        exact = (
            torch.autocast(device_type, enabled=False) if device_type in ("cuda", "cpu") else nullcontext()
        )
        with exact:
            scores = torch.einsum("bnd,bd->bn", docs, query.float())  # (B, N)
        if self.scorer is not None:
            scores = scores + self.scorer(query, docs, mask).float()
        return scores.masked_fill(~mask, float("-inf"))

    def forward(self, batch) -> CoderOutput:
        """Scores of a :class:`~auxir.data.candidates.CandidateBatch`'s candidates for its queries."""
        query = self.encode_query_tokens(batch.query, batch.query_len)  # (B, D)
        return CoderOutput(
            scores=self.score_embeddings(query, batch.doc_emb, batch.mask), query_embeddings=query
        )

    def score_candidates(self, batch) -> torch.Tensor:
        """(B, N) scores; masked candidates at -inf."""
        return self(batch).scores

    # ---- convenience API --------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Query token ids without special tokens, cut at ``max_query_length``: (n, L) and (n,) lengths."""
        ids = self.tokenizer(
            texts,
            add_special_tokens=False,
            truncation=True,
            max_length=self.config.max_query_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        return pad_stack([np.asarray(i, dtype=np.int64) for i in ids], self.template.pad_id)

    def encode_queries(self, texts: list[str], batch_size: int = 64, bf16: bool | None = None) -> np.ndarray:
        """g(Z') of each text as a (n, D) float32 array, in eval mode on the model's device (bf16 on CUDA
        unless ``bf16`` says otherwise); the previous train/eval mode is restored."""
        if batch_size < 1:
            raise ValueError(f"CoderModel.encode_queries: batch_size must be >= 1, got {batch_size}")
        texts = [str(t) for t in texts]
        out = np.empty((len(texts), self.doc_dim), dtype=np.float32)
        device = next(self.parameters()).device
        bf16 = device.type == "cuda" if bf16 is None else bf16
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                for start in range(0, len(texts), batch_size):
                    ids, lengths = self.tokenize(texts[start : start + batch_size])
                    vectors = self.encode_query_tokens(
                        torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)
                    )
                    out[start : start + len(ids)] = vectors.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out


def _read_saved(path: Path) -> dict[str, Any] | None:
    """auxir.json of a saved CODER model; None for any other model directory or Hub name."""
    file = path / AUXIR_FILE
    if not file.is_file():
        return None
    saved = json.loads(file.read_text(encoding="utf-8"))
    if saved.get("format") != FORMAT:
        return None
    if saved.get("version", 0) > 1:
        raise ValueError(f"{file}: expected a CODER model of format version 1, found {saved.get('version')}")
    return saved


def _write_json(file: Path, value: Any) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
