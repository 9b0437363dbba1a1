"""Encoding texts into single vectors with a Hugging Face encoder (a bi-encoder's document or query side).

Follows sentence-transformers' ``SentenceTransformer.encode``: texts are sorted by length (longest
first) so a batch pads little, encoded in batches, and returned in the caller's order; pooling is the
[CLS] vector or the mean of the token vectors under the attention mask (``models.Pooling``), optionally
L2-normalised (``models.Normalize``). Options that are left ``None`` are read from the model
directory's sentence-transformers files (``sentence_bert_config.json``, ``1_Pooling/config.json``,
``modules.json``), so ``all-MiniLM-L6-v2`` encodes as its authors configured it: mean pooling,
normalised, 256 tokens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from auxir.data.records import Doc
from auxir.models.hf import load_tokenizer_and_model, resolve_model_name
from auxir.retrieval.embeddings import EmbeddingStore

logger = logging.getLogger(__name__)

Pooling = Literal["cls", "mean"]
_POOLINGS = get_args(Pooling)
_DEFAULT_MAX_LENGTH = 512


@dataclass
class EncoderConfig:
    """Which model encodes, and how its token vectors become one vector per text.

    ``pooling``, ``normalize`` and ``max_length`` left at ``None`` come from the model's
    sentence-transformers configuration when it has one, else ``"cls"``, ``False`` and 512 (capped by
    the tokenizer's ``model_max_length``). ``device="auto"`` picks CUDA when available; ``bf16``
    autocasts the forward pass to bfloat16 on CUDA only (CPU stays float32). ``query_prefix`` and
    ``doc_prefix`` are prepended to texts (e.g. ``"query: "`` / ``"passage: "`` for E5 models).
    """

    model: str
    pooling: Pooling | None = None
    normalize: bool | None = None
    max_length: int | None = None
    batch_size: int = 32
    device: str = "auto"
    bf16: bool = True
    query_prefix: str = ""
    doc_prefix: str = ""

    def __post_init__(self) -> None:
        if self.pooling is not None and self.pooling not in _POOLINGS:
            raise ValueError(f"EncoderConfig.pooling: expected one of {_POOLINGS}, found {self.pooling!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"EncoderConfig.max_length: expected an integer >= 2, found {self.max_length!r}")
        if self.batch_size < 1:
            raise ValueError(f"EncoderConfig.batch_size: expected an integer >= 1, found {self.batch_size!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def sentence_transformers_settings(model_dir: str | Path) -> dict[str, Any]:
    """Pooling, normalisation and maximum length from a sentence-transformers model directory.

    Returns only what the directory states: ``{}`` for a plain Hugging Face model.
    """
    model_dir = Path(model_dir)
    settings: dict[str, Any] = {}
    st_config = _read_json(model_dir / "sentence_bert_config.json")
    if isinstance(st_config.get("max_seq_length"), int):
        settings["max_length"] = st_config["max_seq_length"]
    modules = _read_json(model_dir / "modules.json", default=[])
    for module in modules if isinstance(modules, list) else []:
        kind = str(module.get("type", ""))
        if kind.endswith("models.Pooling"):
            pooling = _read_json(model_dir / module.get("path", "") / "config.json")
            mode = pooling.get("pooling_mode")  # sentence-transformers ≥ 6 names the mode instead of flags
            if mode in _POOLINGS:
                settings["pooling"] = mode
            elif mode == "mean_tokens" or pooling.get("pooling_mode_mean_tokens"):
                settings["pooling"] = "mean"
            elif mode == "cls_token" or pooling.get("pooling_mode_cls_token"):
                settings["pooling"] = "cls"
            else:
                logger.warning("%s: pooling mode %s is not supported; using cls", model_dir, pooling)
        elif kind.endswith("models.Normalize"):
            settings["normalize"] = True
    if modules:
        settings.setdefault("normalize", False)
    return settings


def _read_json(file: Path, default: Any = None) -> Any:
    if not file.is_file():
        return {} if default is None else default
    return json.loads(file.read_text(encoding="utf-8"))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """One vector per sequence: the [CLS] vector or the mean over non-padding tokens."""
    if pooling == "cls":
        return hidden[:, 0]  # (batch, hidden)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    summed = (hidden * mask).sum(dim=1)  # (batch, hidden)
    return summed / mask.sum(dim=1).clamp(min=1e-9)


class DenseEncoder:
    """A model and tokenizer that turn texts into float32 vectors.

    >>> encoder = DenseEncoder(EncoderConfig("sentence-transformers/all-MiniLM-L6-v2"))  # doctest: +SKIP
    >>> encoder.encode(["a text", "another"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, config: EncoderConfig):
        path = resolve_model_name(config.model)
        settings = sentence_transformers_settings(path) if Path(path).is_dir() else {}
        self.tokenizer, self.model = load_tokenizer_and_model(config.model)
        model_max = getattr(self.tokenizer, "model_max_length", _DEFAULT_MAX_LENGTH) or _DEFAULT_MAX_LENGTH
        normalize = settings.get("normalize", False) if config.normalize is None else config.normalize
        resolved = {
            "pooling": config.pooling or settings.get("pooling", "cls"),
            "normalize": normalize,
            "max_length": config.max_length
            or min(settings.get("max_length", _DEFAULT_MAX_LENGTH), model_max),
        }
        self.config = dataclasses.replace(config, **resolved)  # what this encoder actually does
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
        )
        self.model.to(self.device).eval()
        logger.info(
            "encoder %s on %s: pooling=%s normalize=%s max_length=%d",
            config.model,
            self.device,
            self.config.pooling,
            self.config.normalize,
            self.config.max_length,
        )

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode ``texts`` to a ``(len(texts), dim)`` float32 array, rows in the order of ``texts``.

        ``show_progress`` shows a bar of batches on stderr.
        """
        texts = list(texts)
        output = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first: batches of similar length pad little, and an out-of-memory error comes early.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batch_size = self.config.batch_size
        starts = range(0, len(texts), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            # On stderr; leave=None: wiped when done if it ran below another bar (e.g. training's).
            starts = tqdm(starts, desc="encode", unit="batch", leave=None, dynamic_ncols=True)
        for start in starts:
            positions = order[start : start + batch_size]
            output[positions] = self._encode_batch([texts[i] for i in positions])
        return output

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        ).to(self.device)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda" and self.config.bf16
            else contextlib.nullcontext()
        )
        with autocast:
            hidden = self.model(**batch).last_hidden_state  # (batch, seq, hidden)
        vectors = pool(hidden.float(), batch["attention_mask"], self.config.pooling)  # (batch, hidden)
        if self.config.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        return vectors.cpu().numpy()

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode query texts (with ``config.query_prefix``)."""
        return self.encode([self.config.query_prefix + t for t in texts], show_progress)

    def encode_docs(
        self, docs: Iterable[Doc], use_title: bool = True, show_progress: bool = False
    ) -> EmbeddingStore:
        """Encode documents (title and text joined, with ``config.doc_prefix``) into an :class:`EmbeddingStore`."""
        doc_ids: list[str] = []
        texts: list[str] = []
        for doc in docs:
            doc_ids.append(doc.doc_id)
            texts.append(self.config.doc_prefix + (doc.full_text() if use_title else doc.text))
        embeddings = self.encode(texts, show_progress=show_progress)
        return EmbeddingStore(doc_ids, embeddings, metadata={"encoder": self.config.to_dict()})
