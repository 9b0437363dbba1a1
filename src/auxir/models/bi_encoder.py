"""Bi-encoder: query and document encoded separately into one vector each, scored by their similarity.

The dense retriever of DPR (Karpukhin et al., 2020) and sentence-transformers: ``score`` is
``scale · sim(E_q(query), E_d(document))`` with ``sim`` the dot product or the cosine, so every ranking
objective and :func:`auxir.reranking.rerank` use it as they use a cross-encoder, and the document
vectors can be computed once and searched with FAISS.

A saved model is a sentence-transformers folder (``SentenceTransformer(path)`` loads it as is)::

    config.json, model.safetensors, tokenizer files  # the Hugging Face encoder
    modules.json                                     # Transformer → Pooling (→ Normalize for cosine)
    sentence_bert_config.json                        # max_seq_length: the document side's max_length
    1_Pooling/config.json                            # cls or mean pooling
    config_sentence_transformers.json                # similarity_fn_name: "cosine" or "dot"
    bi_encoder.json                                  # auxir's BiEncoderConfig: reloads exactly
    auxir.json                                       # {"format": "auxir-bi-encoder", "version": 1}
    query/                                           # separate towers only: the query tower, itself a
                                                     # sentence-transformers folder (max_query_length)

With separate towers the root folder *is* the document tower: ``SentenceTransformer(path)`` encodes
documents (what an index needs) and ``SentenceTransformer(path / "query")`` encodes queries. With shared
towers sentence-transformers cuts queries at ``max_length`` where auxir cuts them at
``max_query_length``; the two agree on every query shorter than that. The ``scale`` lives only in
``bi_encoder.json``: it multiplies every score and changes no ranking.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from auxir.data.token_cache import pad_stack
from auxir.io import atomic_directory
from auxir.models.hf import encoder_layers, load_tokenizer_and_model, resolve_model_name
from auxir.models.pair_template import PairTemplate
from auxir.retrieval.dense import pool, sentence_transformers_settings

CONFIG_FILE = "bi_encoder.json"
QUERY_DIR = "query"
FORMAT = {"format": "auxir-bi-encoder", "version": 1}

Side = Literal["query", "document"]
_SIDES = get_args(Side)
_CHOICES = {
    "towers": ("shared", "separate"),
    "pooling": ("cls", "mean"),
    "similarity": ("cosine", "dot"),
    "evaluate": ("retrieve", "rerank"),
}


@dataclass
class BiEncoderConfig:
    """Architecture of a ``BiEncoder`` and how the ``bi_encoder`` family evaluates it (``bi_encoder.json``).

    ``max_query_length`` and ``max_length`` (the document side) count the special tokens, as
    sentence-transformers' ``max_seq_length`` does. ``scale`` multiplies the similarity into a logit:
    ``None`` is 20 for cosine (sentence-transformers' ``MultipleNegativesRankingLoss``) and 1 for dot.
    ``evaluate``: ``retrieve`` encodes the whole corpus and searches it with the FAISS index ``index`` (a
    factory string, e.g. ``"Flat"``, ``"HNSW32"``, ``"IVF256,Flat"``; ``index_search`` sets its search
    parameters, e.g. ``"nprobe=16"`` or ``"efSearch=128"``) for the top ``retrieve_k``; ``rerank`` scores
    the first-stage run.
    """

    towers: Literal["shared", "separate"] = "shared"
    pooling: Literal["cls", "mean"] = "mean"
    similarity: Literal["cosine", "dot"] = "cosine"
    scale: float | None = None
    max_query_length: int = 64
    max_length: int = 256
    evaluate: Literal["retrieve", "rerank"] = "retrieve"
    index: str = "Flat"
    index_search: str = ""
    retrieve_k: int = 100

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"BiEncoderConfig.{name}: expected one of {choices}, found {getattr(self, name)!r}"
                )
        if self.scale is not None and (
            isinstance(self.scale, bool)
            or not isinstance(self.scale, int | float)
            or not 0 < self.scale < math.inf
        ):
            raise ValueError(f"BiEncoderConfig.scale: expected None or a number > 0, found {self.scale!r}")
        for name, least in (("max_query_length", 2), ("max_length", 2), ("retrieve_k", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"BiEncoderConfig.{name}: expected an integer >= {least}, found {value!r}")
        if not isinstance(self.index, str) or not self.index.strip():
            raise ValueError(
                f"BiEncoderConfig.index: expected a FAISS factory string such as 'Flat', found {self.index!r}"
            )

    @property
    def logit_scale(self) -> float:
        if self.scale is not None:
            return float(self.scale)
        return 20.0 if self.similarity == "cosine" else 1.0

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "BiEncoderConfig") -> BiEncoderConfig:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(f"{where}: unknown BiEncoderConfig field(s) {unknown}; valid: {sorted(valid)}")
        return cls(**values)


class BiEncoder(nn.Module):
    """Two towers (or one, shared) over any Hugging Face encoder; ``score`` for rankers, ``encode`` for indexes."""

    def __init__(
        self, encoder: nn.Module, tokenizer, config: BiEncoderConfig, query_encoder: nn.Module | None = None
    ):
        super().__init__()
        if (query_encoder is None) != (config.towers == "shared"):
            raise ValueError(
                f"BiEncoder: towers={config.towers!r} expects "
                f"{'no' if config.towers == 'shared' else 'a'} separate query encoder"
            )
        self.encoder = encoder  # the document tower, and the query tower when they are shared
        self.query_encoder = query_encoder
        self.tokenizer = tokenizer
        self.config = config
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self.num_special = len(self.template.prefix) + len(self.template.suffix)  # [CLS] x [SEP]: 2
        self._takes_token_types = "token_type_ids" in inspect.signature(encoder.forward).parameters
        positions = getattr(encoder.config, "max_position_embeddings", None)
        for side in _SIDES:
            length = self.max_tokens(side)
            if self.text_budget(side) < 1:
                raise ValueError(
                    f"BiEncoderConfig: the {side} length {length} leaves no room for text beside "
                    f"{self.num_special} special tokens"
                )
            if positions is not None and length > positions:
                raise ValueError(
                    f"BiEncoderConfig: the {side} length {length} exceeds the encoder's "
                    f"{positions} position embeddings"
                )

    # ---- construction and persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, config: BiEncoderConfig | None = None) -> BiEncoder:
        """A folder saved by ``save_pretrained`` (exactly as saved), or a new bi-encoder from any encoder.

        Without ``config``: the saved ``bi_encoder.json``, else what a sentence-transformers folder states
        (pooling, ``max_seq_length``, cosine when it normalises), else the defaults. New separate towers
        both start as copies of the checkpoint.
        """
        path = resolve_model_name(str(name_or_path))
        saved = read_config(path)
        tokenizer, encoder = load_tokenizer_and_model(path)
        if config is None:
            config = saved or config_from_sentence_transformers(path, encoder.config)
        # Keep fp32 master weights even for an fp16 checkpoint (AdamW cannot update fp16); autocast does bf16.
        encoder = encoder.float()
        query_encoder = None
        if config.towers == "separate":
            if saved is not None and saved.towers == "separate":
                query_dir = Path(path) / QUERY_DIR
                if not (query_dir / "config.json").is_file():
                    raise FileNotFoundError(
                        f"{path}: {CONFIG_FILE} says towers='separate', expected the query tower in "
                        f"{query_dir}, found no config.json there"
                    )
                query_encoder = load_tokenizer_and_model(str(query_dir)).model.float()
            else:
                query_encoder = copy.deepcopy(encoder)
        return cls(encoder, tokenizer, config, query_encoder)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the sentence-transformers folder described in the module docstring, atomically."""
        with atomic_directory(directory) as tmp:
            self._save_tower(tmp, self.encoder, self.config.max_length)
            if self.query_encoder is not None:
                self._save_tower(tmp / QUERY_DIR, self.query_encoder, self.config.max_query_length)
            (tmp / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
            (tmp / "auxir.json").write_text(json.dumps(FORMAT) + "\n")

    def _save_tower(self, folder: Path, encoder: nn.Module, max_seq_length: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        encoder.config.architectures = [type(encoder).__name__]
        encoder.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        tokenizer_file = folder / "tokenizer_config.json"
        tokenizer_config = json.loads(tokenizer_file.read_text(encoding="utf-8"))
        tokenizer_config["model_max_length"] = max_seq_length
        _write_json(tokenizer_file, tokenizer_config)
        # The module names and pooling keys of sentence-transformers 2.x-5.x, which 6.x still reads.
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if self.config.similarity == "cosine":
            modules.append(
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                }
            )
        _write_json(folder / "modules.json", modules)
        _write_json(
            folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False}
        )
        (folder / "1_Pooling").mkdir()
        _write_json(
            folder / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": int(encoder.config.hidden_size),
                "pooling_mode_cls_token": self.config.pooling == "cls",
                "pooling_mode_mean_tokens": self.config.pooling == "mean",
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
        )
        _write_json(
            folder / "config_sentence_transformers.json",
            {"similarity_fn_name": self.config.similarity, "prompts": {}, "default_prompt_name": None},
        )

    def new_parameter_names(self) -> set[str]:
        """None: every parameter comes from the checkpoint (no head)."""
        return set()

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last encoder layer of each tower: where the gradients of the objectives meet and are compared."""
        towers = [self.encoder] if self.query_encoder is None else [self.query_encoder, self.encoder]
        return [p for t in towers for p in encoder_layers(t.base_model)[-1].parameters() if p.requires_grad]

    # ---- forward ----------------------------------------------------------------------------------
    def tower(self, side: Side) -> nn.Module:
        if side not in _SIDES:
            raise ValueError(f"BiEncoder: side must be one of {_SIDES}, found {side!r}")
        return self.query_encoder if side == "query" and self.query_encoder is not None else self.encoder

    def max_tokens(self, side: Side) -> int:
        return self.config.max_query_length if side == "query" else self.config.max_length

    def text_budget(self, side: Side) -> int:
        """Text tokens of one side that fit beside its special tokens (what its token cache keeps)."""
        return self.max_tokens(side) - self.num_special

    @property
    def scale(self) -> float:
        return self.config.logit_scale

    def encode_ids(self, ids: torch.Tensor, lengths: torch.Tensor, side: Side = "document") -> torch.Tensor:
        """Token ids without special tokens (n, L) and their lengths (n,) -> one float32 vector per text (n, H),
        unit length for cosine similarity."""
        tower = self.tower(side)
        packed = self.template.pack_single(ids, lengths)  # [CLS] text [SEP] per row
        extra = {"token_type_ids": packed.token_type_ids} if self._takes_token_types else {}
        hidden = tower(input_ids=packed.input_ids, attention_mask=packed.attention_mask, **extra)
        vectors = pool(hidden.last_hidden_state.float(), packed.attention_mask, self.config.pooling)  # (n, H)
        if self.config.similarity == "cosine":
            vectors = F.normalize(vectors, p=2, dim=-1)
        return vectors

    forward = encode_ids

    def similarity(self, queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
        """Scaled similarity of every query vector (nq, H) with every document vector (nd, H): (nq, nd).

        In float32 even under autocast: bf16 keeps ~3 digits of a cosine, too few once scaled by 20."""
        with torch.autocast(queries.device.type, enabled=False):
            return self.scale * queries.float() @ docs.float().T

    def score(self, query, query_len, doc, doc_len) -> torch.Tensor:  # (n,)
        """``scale · sim`` of row i's query and document, each encoded alone (for ranking objectives, rerank)."""
        q = self.encode_ids(query, query_len, "query")  # (n, H)
        d = self.encode_ids(doc, doc_len, "document")  # (n, H)
        return self.scale * (q * d).sum(-1)

    # ---- encoding for an index --------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], side: Side = "document") -> list[np.ndarray]:
        """Token ids of each text without special tokens, cut to the side's ``text_budget``."""
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts),
            add_special_tokens=False,
            truncation=True,
            max_length=self.text_budget(side),
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        return [np.asarray(ids, dtype=np.int64) for ids in encoded]

    def encode(self, texts: Sequence[str], side: Side = "document", batch_size: int = 64) -> np.ndarray:
        """``(len(texts), H)`` float32 vectors, rows in the order of ``texts`` (see :meth:`encode_tokens`)."""
        return self.encode_tokens(self.tokenize(texts, side), side, batch_size)

    def encode_tokens(
        self, ids: Sequence[np.ndarray], side: Side = "document", batch_size: int = 64
    ) -> np.ndarray:
        """Vectors of pre-tokenised texts: longest first (batches pad little; memory peaks early), in
        eval mode under ``torch.inference_mode``, bf16 autocast on CUDA; rows in the order of ``ids``."""
        if batch_size < 1:
            raise ValueError(f"BiEncoder.encode: batch_size must be >= 1, found {batch_size}")
        self.tower(side)  # checks side
        dim = int(self.encoder.config.hidden_size)
        out = np.empty((len(ids), dim), dtype=np.float32)
        if not len(ids):
            return out
        device = next(self.parameters()).device
        order = np.argsort(-np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids)), kind="stable")
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    batch, lengths = pad_stack([ids[i] for i in rows], self.template.pad_id)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                        vectors = self.encode_ids(
                            torch.from_numpy(batch).to(device, non_blocking=True),
                            torch.from_numpy(lengths).to(device, non_blocking=True),
                            side,
                        )
                    out[rows] = vectors.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out


def read_config(path: str | Path, config: type | None = None, name: str = CONFIG_FILE):
    """The ``name`` file (``bi_encoder.json``) of a saved model folder as a ``config`` (``BiEncoderConfig``),
    or None for any other model."""
    config = config or BiEncoderConfig
    file = Path(path) / name
    if not file.is_file():
        return None
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}, line {error.lineno}: expected JSON, found {error.msg}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"{file}: expected a mapping of {config.__name__} fields, found {type(values).__name__}"
        )
    return config.from_dict(values, where=str(file))


def config_from_sentence_transformers(path: str | Path, hf_config: Any = None) -> BiEncoderConfig:
    """Defaults, with the pooling, document length and similarity a sentence-transformers folder states,
    and both lengths cut to the encoder's position embeddings (``hf_config.max_position_embeddings``).

    Similarity: ``config_sentence_transformers.json``'s ``similarity_fn_name`` when it names cosine or dot;
    else cosine for a model that normalises its vectors and dot for one that does not.
    """
    positions = getattr(hf_config, "max_position_embeddings", None) or math.inf
    defaults = BiEncoderConfig()
    values: dict[str, Any] = {
        "max_length": int(min(defaults.max_length, positions)),
        "max_query_length": int(min(defaults.max_query_length, positions)),
    }
    if not Path(path).is_dir():
        return BiEncoderConfig(**values)
    settings = sentence_transformers_settings(path)
    if "pooling" in settings:
        values["pooling"] = settings["pooling"]
    if "max_length" in settings:
        values["max_length"] = int(min(settings["max_length"], positions))
    if "normalize" in settings:
        values["similarity"] = "cosine" if settings["normalize"] else "dot"
    file = Path(path) / "config_sentence_transformers.json"
    named = json.loads(file.read_text(encoding="utf-8")).get("similarity_fn_name") if file.is_file() else None
    if named in ("cosine", "dot", "dot_product"):
        values["similarity"] = "cosine" if named == "cosine" else "dot"
    return BiEncoderConfig(**values)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
