"""Multi-aspect dense retrieval (MADRM, Kong et al., KDD 2022): a bi-encoder whose text vector fuses aspect vectors.

Each tower reads its encoder's token outputs ``φ`` (n, W, H) and

1. extracts ``K`` aspect vectors and an OTHER vector (the Aspect Extraction Network, §4, eq. 1–2):
   ``E_A = softmax(Q W^Q (φ W^K)^T / √H) φ W^V`` with ``Q`` (K, H) learned aspect queries, the [CLS] token and
   the padding masked out of the keys. OTHER is one more learned query (``other: learned``, the paper's), the
   [CLS] vector (``cls``), the mean of the first ``other_tokens`` text tokens (``first_tokens``), or absent;
2. optionally projects every aspect vector to ``projection`` dimensions (§8.2 projects 768 → 128);
3. fuses them into ONE vector (the Aspect Fusion Networks, §6), which is what FAISS indexes:
   ``weighted_sum`` (eq. 4: ``w = softmax(γ)``), ``presence`` (eq. 5: ``w_a ∝ P_a · γ_a``, L1-normalised, with
   ``P_a = sigmoid(p_a · E_a + c_a)`` the presence head) or ``cls_gating`` (``w = softmax(Linear(E_CLS))``).

Aspect prediction heads ``softmax(E_a U_a^T + b_a)`` (§5), one per labelled aspect, are shared by the two
towers. The baselines of §8.2 are settings of the same model:

* BiBERT: ``aspects: 0``: one vector, ``pooling`` (``cls`` or ``mean``) of the token outputs;
* MtBERT: ``aspects: 0`` with ``labels``: the prediction heads read that pooled vector;
* MpBERT: ``extraction: first_tokens``: the aspect vectors are the outputs of the first ``K`` text tokens,
  fused by the same fusion network (a weighted *average*, as the paper fuses both "using the same AFN";
  not concatenated, which would change the index's dimension); tokens a short text lacks get weight 0.

A saved model is a folder::

    config.json, model.safetensors, tokenizer files  # the Hugging Face encoder (the document tower)
    query/                                           # separate towers only: the query encoder
    aspect_encoder.json                              # AspectEncoderConfig: reloads exactly
    aspect_heads.safetensors                         # extraction, fusion, projection and prediction weights
    aspect_vocabulary.json                           # each labelled aspect's values (class ids), its source
    auxir.json                                       # {"format": "auxir-aspect-encoder", "version": 1}

It is not a sentence-transformers folder: sentence-transformers would read the encoder alone and pool it,
which is not this model's vector.

The optional pre-training stage (§7.1, eq. 7; ``PretrainingConfig``, run by the ``madrm`` family) adds an MLM
head per tower (``masked_lm_heads``, ``masked_lm_loss``) that is never saved with the model.

>>> config = AspectEncoderConfig(aspects=3, fusion="presence", other="cls")  # doctest: +SKIP
>>> model = AspectEncoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", config)  # doctest: +SKIP
>>> model.encode(["white nike socks"], side="query").shape  # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from auxir.data.aspects import AspectLabelsConfig, AspectVocabulary, config_from_value
from auxir.data.token_cache import pad_stack
from auxir.io import atomic_directory
from auxir.models.bi_encoder import QUERY_DIR, BiEncoder, BiEncoderConfig, Side
from auxir.models.bi_encoder import read_config as read_bi_encoder_config
from auxir.models.hf import load_tokenizer_and_model, resolve_model_name
from auxir.retrieval.dense import pool

CONFIG_FILE = "aspect_encoder.json"
HEADS_FILE = "aspect_heads.safetensors"
VOCABULARY_FILE = "aspect_vocabulary.json"
FORMAT = {"format": "auxir-aspect-encoder", "version": 1}

Extraction = Literal["attention", "first_tokens"]
Other = Literal["learned", "cls", "first_tokens", "none"]
Fusion = Literal["weighted_sum", "presence", "cls_gating"]
_CHOICES = {"extraction": get_args(Extraction), "other": get_args(Other), "fusion": get_args(Fusion)}
PretrainingTexts = Literal["both", "documents"]
IGNORE = -100  # the label of a token the MLM loss does not predict (transformers' convention)


@dataclass
class PretrainingConfig:
    """The MLM + aspect pre-training stage of §7.1 (eq. 7), run by the ``madrm`` family before fine-tuning
    when ``steps`` > 0 (``architecture.pretraining``; off by default).

    Each step draws ``batch_size`` documents of the corpus and (``texts: both``) ``batch_size`` training
    queries, masks ``mlm_probability`` of each text's tokens (BERT's 80/10/10) and minimises, per side,
    ``L_MLM + aspect_weight · Σ_a (L_AP^a + L_APP^a)`` (eq. 7 has ``aspect_weight`` 1; the aspect terms need
    ``labels``, presence also ``fusion: presence``). New parameters (aspect networks, a new MLM head) learn
    at ``new_parameters_learning_rate`` (None: ``learning_rate``); linear warm-up over ``warmup_ratio`` of
    the steps, then linear decay. Weight decay and gradient clipping are ``training``'s.
    """

    steps: int = 0
    batch_size: int = 32  # texts per side and step
    learning_rate: float = 5e-5
    new_parameters_learning_rate: float | None = None
    warmup_ratio: float = 0.1
    mlm_probability: float = 0.15
    aspect_weight: float = 1.0
    texts: PretrainingTexts = "both"  # documents of the corpus, and the training queries
    log_every: int = 10

    def __post_init__(self) -> None:
        where = "AspectEncoderConfig.pretraining"
        for name, least in (("steps", 0), ("batch_size", 1), ("log_every", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{where}.{name}: expected an integer >= {least}, found {value!r}")
        for name, low, high in (
            ("learning_rate", 0.0, math.inf),
            ("mlm_probability", 0.0, 1.0),
            ("warmup_ratio", 0.0, 1.0),
            ("aspect_weight", 0.0, math.inf),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ValueError(f"{where}.{name}: expected a number in [{low}, {high}], found {value!r}")
        rate = self.new_parameters_learning_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0):
            raise ValueError(
                f"{where}.new_parameters_learning_rate: expected None or a number >= 0, found {rate!r}"
            )
        if self.texts not in get_args(PretrainingTexts):
            raise ValueError(
                f"{where}.texts: expected one of {get_args(PretrainingTexts)}, found {self.texts!r}"
            )

    @classmethod
    def from_value(cls, value: Any, where: str = "PretrainingConfig") -> PretrainingConfig:
        """The config itself, or one built from its dict (as read back from ``aspect_encoder.json``)."""
        return config_from_value(cls, value, where)


@dataclass
class AspectEncoderConfig(BiEncoderConfig):
    """A ``BiEncoderConfig`` (towers, similarity, lengths, retrieval) and the aspect networks (module docstring).

    ``aspects``: K aspect vectors besides OTHER; with ``labels`` it must equal the number of labelled aspects
    (slot i learns aspect i), without them the aspects are latent (MADR). 0: one pooled vector (BiBERT,
    MtBERT); ``extraction``, ``other`` and ``fusion`` are then unused. ``pooling`` is used only then.
    """

    aspects: int = 3
    extraction: Extraction = "attention"
    other: Other = "learned"
    other_tokens: int = 4  # text tokens averaged into OTHER with ``other: first_tokens``
    fusion: Fusion = "presence"
    projection: int | None = None  # the dimension every aspect vector (and the index) is projected to
    labels: AspectLabelsConfig = field(default_factory=AspectLabelsConfig)
    # How the model was pre-trained before fine-tuning (kept in aspect_encoder.json as a record; a saved
    # model reloads without running it again).
    pretraining: PretrainingConfig = field(default_factory=PretrainingConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.labels = AspectLabelsConfig.from_value(self.labels, "AspectEncoderConfig.labels")
        self.pretraining = PretrainingConfig.from_value(self.pretraining, "AspectEncoderConfig.pretraining")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"AspectEncoderConfig.{name}: expected one of {choices}, found {getattr(self, name)!r}"
                )
        for name, least in (("aspects", 0), ("other_tokens", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"AspectEncoderConfig.{name}: expected an integer >= {least}, found {value!r}"
                )
        if self.projection is not None and (
            isinstance(self.projection, bool) or not isinstance(self.projection, int) or self.projection < 1
        ):
            raise ValueError(
                f"AspectEncoderConfig.projection: expected None or an integer >= 1, found {self.projection!r}"
            )

    @property
    def slots(self) -> int:
        """Vectors fused into the text vector: K aspects and OTHER (one pooled vector for ``aspects: 0``)."""
        if self.aspects == 0:
            return 1
        return self.aspects + (self.other != "none")

    @property
    def learned_queries(self) -> int:
        """Rows of the extraction network's query ``Q``: the attention aspects and a learned OTHER."""
        if self.aspects == 0:
            return 0
        return self.aspects * (self.extraction == "attention") + (self.other == "learned")

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "AspectEncoderConfig") -> AspectEncoderConfig:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(
                f"{where}: unknown AspectEncoderConfig field(s) {unknown}; valid: {sorted(valid)}"
            )
        return cls(**values)


@dataclass
class AspectEncoding:
    """What one tower makes of a batch of texts."""

    vectors: torch.Tensor  # (n, D) the fused text vector (unit length for cosine): what is indexed
    slots: torch.Tensor  # (n, S, D) the aspect vectors, OTHER last (S = 1: the pooled vector)
    weights: torch.Tensor  # (n, S) fusion weights, each row summing to one
    presence_logits: torch.Tensor | None  # (n, S) the presence head (``fusion: presence`` only)
    aspect_logits: dict[str, torch.Tensor]  # labelled aspect → (n, |V_a|) prediction logits
    attention: torch.Tensor | None  # (n, learned queries, W) extraction attention over the packed tokens
    hidden: torch.Tensor | None = None  # (n, W, H) the encoder's token outputs (what an MLM head reads)
    text_start: int = 1  # position of the first text token in ``hidden`` (after [CLS])


class AspectNetwork(nn.Module):
    """One tower's extraction (eq. 1–2), projection and fusion (eq. 4, eq. 5 or CLS-gating)."""

    def __init__(self, hidden: int, config: AspectEncoderConfig, init_range: float = 0.02):
        super().__init__()
        self.config = config
        self.hidden = hidden
        learned = config.learned_queries
        if learned:
            self.aspect_queries = nn.Parameter(torch.randn(learned, hidden) * init_range)  # Q of eq. 1
            self.w_q = nn.Linear(hidden, hidden, bias=False)
            self.w_k = nn.Linear(hidden, hidden, bias=False)
            self.w_v = nn.Linear(hidden, hidden, bias=False)
        self.projection = nn.Linear(hidden, config.projection) if config.projection else None
        dim = config.projection or hidden
        slots = config.slots
        if config.aspects and config.fusion in ("weighted_sum", "presence"):
            self.gamma = nn.Parameter(torch.zeros(slots))  # γ of eq. 4 and 5: equal weights at start
        if config.aspects and config.fusion == "presence":
            self.presence_weight = nn.Parameter(
                torch.randn(slots, dim) * init_range
            )  # one sigmoid layer per slot
            self.presence_bias = nn.Parameter(torch.zeros(slots))
        if config.aspects and config.fusion == "cls_gating":
            self.gate = nn.Linear(hidden, slots)

    @property
    def dimension(self) -> int:
        return self.config.projection or self.hidden

    def forward(
        self,
        hidden: torch.Tensor,  # (n, W, H) token outputs of [CLS] text [SEP] (padding after)
        attention_mask: torch.Tensor,  # (n, W)
        text_len: torch.Tensor,  # (n,)
        text_start: int,  # position of the first text token (after [CLS])
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Slots (n, S, D), fusion weights (n, S), presence logits (n, S) or None, attention or None."""
        config = self.config
        n, width, _ = hidden.shape
        cls = hidden[:, 0]  # (n, H)
        if config.aspects == 0:
            slots = pool(hidden, attention_mask, config.pooling).unsqueeze(1)  # (n, 1, H)
            return self._project(slots), hidden.new_ones(n, 1), None, None

        attention = extracted = None
        if config.learned_queries:
            positions = torch.arange(width, device=hidden.device)
            keys = attention_mask.bool() & (positions >= text_start)  # (n, W): [CLS] and padding masked
            keys[:, 0] |= ~keys.any(1)  # a frame without [SEP] around an empty text: only [CLS] is left
            q = self.w_q(self.aspect_queries)  # (Sq, H)
            k, v = self.w_k(hidden), self.w_v(hidden)  # (n, W, H) each
            scores = torch.einsum("sh,nwh->nsw", q, k) / math.sqrt(self.hidden)  # (n, Sq, W)
            attention = scores.float().masked_fill(~keys.unsqueeze(1), float("-inf")).softmax(-1)
            extracted = attention.to(v.dtype) @ v  # (n, Sq, H)

        valid = torch.ones(n, config.slots, dtype=torch.bool, device=hidden.device)  # (n, S)
        if config.extraction == "attention":
            aspects = extracted[:, : config.aspects]  # (n, K, H)
        else:  # MpBERT: the first K text tokens; those a short text lacks are left out of the fusion
            index = (text_start + torch.arange(config.aspects, device=hidden.device)).clamp(max=width - 1)
            aspects = hidden[:, index]  # (n, K, H)
            valid[:, : config.aspects] = torch.arange(
                config.aspects, device=hidden.device
            ) < text_len.unsqueeze(1)
        parts = [aspects]
        if config.other == "learned":
            parts.append(extracted[:, -1:])  # (n, 1, H)
        elif config.other == "cls":
            parts.append(cls.unsqueeze(1))
        elif config.other == "first_tokens":
            positions = torch.arange(width, device=hidden.device)
            span = (positions >= text_start) & (positions < text_start + config.other_tokens)  # (W,)
            span = span & attention_mask.bool() & (positions < text_start + text_len.unsqueeze(1))  # (n, W)
            counted = span.sum(1, keepdim=True)  # (n, 1)
            mean = (hidden * span.unsqueeze(-1)).sum(1) / counted.clamp(min=1)  # (n, H)
            parts.append(mean.unsqueeze(1))
            valid[:, -1] = counted.squeeze(1) > 0
        slots = self._project(torch.cat(parts, dim=1))  # (n, S, D)

        presence_logits = None
        if config.fusion == "weighted_sum":
            weights = self.gamma.softmax(-1).expand(n, -1)  # eq. 4
        elif config.fusion == "presence":
            presence_logits = (slots.float() * self.presence_weight).sum(-1) + self.presence_bias  # (n, S)
            weights = torch.sigmoid(presence_logits) * self.gamma.softmax(-1)  # eq. 5, before L1
        else:
            weights = self.gate(cls).float().softmax(-1)  # CLS-gating
        weights = F.normalize(weights.float() * valid, p=1, dim=-1)  # (n, S), rows sum to one
        return slots, weights, presence_logits, attention

    def _project(self, slots: torch.Tensor) -> torch.Tensor:
        slots = slots.float()
        return self.projection(slots).float() if self.projection is not None else slots


class AspectEncoder(BiEncoder):
    """A ``BiEncoder`` whose text vector is the fusion of aspect vectors; ``score``, ``similarity`` and
    ``encode`` behave as the bi-encoder's, ``encode_aspects`` returns everything a tower computes."""

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer,
        config: AspectEncoderConfig,
        vocabulary: AspectVocabulary | None = None,
        query_encoder: nn.Module | None = None,
    ):
        super().__init__(encoder, tokenizer, config, query_encoder)
        if config.labels.enabled and vocabulary is None:
            raise ValueError(
                "AspectEncoder: architecture.labels names aspect labels, expected their vocabulary, found none"
            )
        if vocabulary is not None and config.aspects not in (0, len(vocabulary.names)):
            raise ValueError(
                f"AspectEncoder: aspects={config.aspects} but the labels name {len(vocabulary.names)} aspects "
                f"{list(vocabulary.names)}; set architecture.aspects to {len(vocabulary.names)} (or 0 for MtBERT)"
            )
        hidden = int(encoder.config.hidden_size)
        init_range = float(getattr(encoder.config, "initializer_range", 0.02))
        sides = ("shared",) if config.towers == "shared" else ("query", "document")
        self.networks = nn.ModuleDict({s: AspectNetwork(hidden, config, init_range) for s in sides})
        self.vocabulary = vocabulary
        dim = config.projection or hidden
        names = vocabulary.names if vocabulary is not None else ()
        # U_a and b_a of §5, one table per aspect, shared by the query and document towers.
        self.predictors = nn.ModuleDict({name: nn.Linear(dim, vocabulary.size(name)) for name in names})
        self.slot_names: tuple[str, ...] = self._slot_names()

    def _slot_names(self) -> tuple[str, ...]:
        config = self.config
        if config.aspects == 0:
            return ("text",)
        names = (
            self.vocabulary.names
            if self.vocabulary
            else tuple(f"aspect_{i + 1}" for i in range(config.aspects))
        )
        return (*names, "other") if config.other != "none" else names

    # ---- construction and persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        config: AspectEncoderConfig | None = None,
        vocabulary: AspectVocabulary | None = None,
    ) -> AspectEncoder:
        """A folder saved by ``save_pretrained`` (exactly as saved; no ``config`` or ``vocabulary``), or a new
        aspect encoder over any Hugging Face encoder (new separate towers both start as its copies)."""
        path = resolve_model_name(str(name_or_path))
        saved = read_config(path)
        if saved is not None:
            if config is not None or vocabulary is not None:
                raise ValueError(
                    f"{path}: a saved aspect encoder reloads with its own {CONFIG_FILE} and {VOCABULARY_FILE}; "
                    "expected no config or vocabulary, found one"
                )
            return cls._load(Path(path), saved)
        tokenizer, encoder = load_tokenizer_and_model(path)
        config = config or AspectEncoderConfig()
        encoder = encoder.float()  # fp32 master weights (AdamW cannot update fp16); autocast does bf16
        query_encoder = copy.deepcopy(encoder) if config.towers == "separate" else None
        return cls(encoder, tokenizer, config, vocabulary, query_encoder)

    @classmethod
    def _load(cls, path: Path, config: AspectEncoderConfig) -> AspectEncoder:
        tokenizer, encoder = load_tokenizer_and_model(str(path))
        query_encoder = None
        if config.towers == "separate":
            if not (path / QUERY_DIR / "config.json").is_file():
                raise FileNotFoundError(
                    f"{path}: {CONFIG_FILE} says towers='separate', expected the query tower in "
                    f"{path / QUERY_DIR}, found no config.json there"
                )
            query_encoder = load_tokenizer_and_model(str(path / QUERY_DIR)).model.float()
        vocabulary = None
        if (path / VOCABULARY_FILE).is_file():
            vocabulary = AspectVocabulary.from_dict(
                json.loads((path / VOCABULARY_FILE).read_text(encoding="utf-8")), str(path / VOCABULARY_FILE)
            )
        model = cls(encoder.float(), tokenizer, config, vocabulary, query_encoder)
        heads = path / HEADS_FILE
        if not heads.is_file():
            raise FileNotFoundError(
                f"{path}: expected the aspect networks' weights in {HEADS_FILE}, found none"
            )
        state = load_file(str(heads))
        expected = model._head_state()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{heads}: expected the weights of {CONFIG_FILE}'s networks, found missing {missing[:5]} "
                f"and unexpected {unexpected[:5]} tensors"
            )
        model.load_state_dict(state, strict=False)
        return model

    def _head_state(self) -> dict[str, torch.Tensor]:
        """Every parameter that is not a Hugging Face encoder's: extraction, fusion, projection, predictors."""
        return {
            name: tensor
            for name, tensor in self.state_dict().items()
            if not name.startswith(("encoder.", "query_encoder."))
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the folder described in the module docstring, atomically."""
        with atomic_directory(directory) as tmp:
            self._save_encoder(tmp, self.encoder)
            if self.query_encoder is not None:
                self._save_encoder(tmp / QUERY_DIR, self.query_encoder)
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in self._head_state().items()},
                str(tmp / HEADS_FILE),
            )
            (tmp / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")
            if self.vocabulary is not None:
                text = json.dumps(self.vocabulary.to_dict(), indent=2, ensure_ascii=False) + "\n"
                (tmp / VOCABULARY_FILE).write_text(text, encoding="utf-8")
            (tmp / "auxir.json").write_text(json.dumps(FORMAT) + "\n", encoding="utf-8")

    def _save_encoder(self, folder: Path, encoder: nn.Module) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        encoder.config.architectures = [type(encoder).__name__]
        encoder.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def new_parameter_names(self) -> set[str]:
        """The aspect networks and prediction heads: they start random."""
        return {
            name for name, _ in self.named_parameters() if not name.startswith(("encoder.", "query_encoder."))
        }

    # ---- forward ----------------------------------------------------------------------------------
    def network(self, side: Side) -> AspectNetwork:
        super().tower(side)  # checks side
        return self.networks["shared" if "shared" in self.networks else side]

    def tower(self, side: Side) -> nn.Module:
        """Everything that encodes ``side``: its encoder and its aspect network (whose weights an index
        fingerprints)."""
        return nn.ModuleList([super().tower(side), self.network(side)])

    @property
    def dimension(self) -> int:
        """The text vector's dimension (the index's)."""
        return self.config.projection or int(self.encoder.config.hidden_size)

    def encode_aspects(
        self, ids: torch.Tensor, lengths: torch.Tensor, side: Side = "document"
    ) -> AspectEncoding:
        """Token ids without special tokens (n, L) and their lengths (n,) → the tower's ``AspectEncoding``."""
        encoder = super().tower(side)
        packed = self.template.pack_single(ids, lengths)  # [CLS] text [SEP] per row
        extra = {"token_type_ids": packed.token_type_ids} if self._takes_token_types else {}
        hidden = encoder(input_ids=packed.input_ids, attention_mask=packed.attention_mask, **extra)
        hidden = hidden.last_hidden_state.float()  # (n, W, H)
        slots, weights, presence_logits, attention = self.network(side)(
            hidden, packed.attention_mask, lengths, packed.first_offset
        )
        vectors = (weights.unsqueeze(-1) * slots).sum(1)  # (n, D)
        if self.config.similarity == "cosine":
            vectors = F.normalize(vectors, p=2, dim=-1)
        # Slot i learns aspect i; MtBERT's heads all read its one pooled vector.
        logits = {
            name: head(slots[:, 0 if self.config.aspects == 0 else i]).float()
            for i, (name, head) in enumerate(self.predictors.items())
        }
        return AspectEncoding(
            vectors, slots, weights, presence_logits, logits, attention, hidden, packed.first_offset
        )

    def encode_ids(self, ids: torch.Tensor, lengths: torch.Tensor, side: Side = "document") -> torch.Tensor:
        """The fused text vectors (n, D): what ranking objectives, ``score`` and the index use."""
        return self.encode_aspects(ids, lengths, side).vectors

    forward = encode_ids

    # ---- encoding for an index and for evaluation --------------------------------------------------
    def encode_tokens(
        self, ids: Sequence[np.ndarray], side: Side = "document", batch_size: int = 64
    ) -> np.ndarray:
        """``(len(ids), dimension)`` float32 vectors of pre-tokenised texts, rows in the order of ``ids``."""
        return self.predict_tokens(ids, side, batch_size, vectors_only=True).vectors

    def predict_tokens(
        self,
        ids: Sequence[np.ndarray],
        side: Side = "document",
        batch_size: int = 64,
        vectors_only: bool = False,
    ) -> AspectPredictions:
        """Vectors, fusion weights, presence and aspect probabilities of pre-tokenised texts (numpy, float32):
        longest first, in eval mode under ``torch.inference_mode``, bf16 autocast on CUDA."""
        if batch_size < 1:
            raise ValueError(f"AspectEncoder.encode: batch_size must be >= 1, found {batch_size}")
        self.network(side)  # checks side
        n, slots = len(ids), len(self.slot_names)
        out = AspectPredictions(np.empty((n, self.dimension), dtype=np.float32))
        if not vectors_only:
            out.weights = np.empty((n, slots), dtype=np.float32)
            if self.config.fusion == "presence" and self.config.aspects:
                out.presence = np.empty((n, slots), dtype=np.float32)
            out.probabilities = {
                name: np.empty((n, self.vocabulary.size(name)), dtype=np.float32) for name in self.predictors
            }
        if not n:
            return out
        device = next(self.parameters()).device
        order = np.argsort(-np.fromiter((len(a) for a in ids), dtype=np.int64, count=n), kind="stable")
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, n, batch_size):
                    rows = order[start : start + batch_size]
                    batch, lengths = pad_stack([ids[i] for i in rows], self.template.pad_id)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                        encoding = self.encode_aspects(
                            torch.from_numpy(batch).to(device, non_blocking=True),
                            torch.from_numpy(lengths).to(device, non_blocking=True),
                            side,
                        )
                    out.vectors[rows] = encoding.vectors.float().cpu().numpy()
                    if vectors_only:
                        continue
                    out.weights[rows] = encoding.weights.float().cpu().numpy()
                    if out.presence is not None:
                        out.presence[rows] = torch.sigmoid(encoding.presence_logits).float().cpu().numpy()
                    for name, logits in encoding.aspect_logits.items():
                        out.probabilities[name][rows] = logits.float().softmax(-1).cpu().numpy()
        finally:
            self.train(was_training)
        return out


@dataclass
class AspectPredictions:
    """``predict_tokens``'s numpy arrays, rows in the order of the texts."""

    vectors: np.ndarray  # (n, D)
    weights: np.ndarray | None = None  # (n, S) fusion weights, slots as ``AspectEncoder.slot_names``
    presence: np.ndarray | None = None  # (n, S) presence probabilities (``fusion: presence``)
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # aspect → (n, |V_a|)


def read_config(path: str | Path) -> AspectEncoderConfig | None:
    """The ``aspect_encoder.json`` of a saved model folder, or None for any other model."""
    return read_bi_encoder_config(path, AspectEncoderConfig, CONFIG_FILE)


# ---- the masked-language-model head of pre-training (§7.1, eq. 7) ------------------------------------
@dataclass
class MaskedLmHeads:
    """The MLM head of each tower (one for shared towers): used by the pre-training stage only, never saved
    with the model."""

    heads: nn.ModuleDict  # "shared", or "query" and "document"
    missing: list[str]  # head weights the checkpoint lacked (they start new); empty: all loaded
    tied: bool  # the decoder is the tower's word-embedding matrix (one parameter)

    def head(self, side: Side) -> nn.Module:
        return self.heads["shared" if "shared" in self.heads else side]


def masked_lm_heads(model: AspectEncoder, name_or_path: str | Path) -> MaskedLmHeads:
    """The masked-language-model head of the checkpoint ``name_or_path`` (``AutoModelForMaskedLM``'s, e.g.
    BERT's ``cls``: transform and decoder) over each tower of ``model``.

    A checkpoint without MLM head weights (sentence-transformers checkpoints keep the encoder alone) gets a
    new head: its transform and bias start random and its decoder is tied to the tower's word embeddings,
    as BERT ties them. A decoder the checkpoint ties (``tie_word_embeddings``) is tied to the tower's
    embeddings too; separate towers each get a copy of the head.
    """
    import transformers
    from transformers import AutoModelForMaskedLM

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # its load report lists the missing head; we say it once
    try:
        _, (mlm, info) = load_tokenizer_and_model(
            resolve_model_name(str(name_or_path)), AutoModelForMaskedLM, output_loading_info=True
        )
    finally:
        transformers.logging.set_verbosity(verbosity)
    parts = [(n, m) for n, m in mlm.named_children() if n != mlm.base_model_prefix]
    decoder = mlm.get_output_embeddings()
    if len(parts) != 1 or decoder is None:
        raise ValueError(
            f"cannot pre-train {name_or_path}: expected a masked-LM head in one module (BERT's cls, RoBERTa's "
            f"lm_head), found {type(mlm).__name__} with {[n for n, _ in parts]}"
        )
    name, head = parts[0]
    decoder_name = next(n for n, m in head.named_modules() if m is decoder)
    missing = sorted(k for k in info.get("missing_keys", ()) if k.startswith(f"{name}."))
    tied = bool(missing) or bool(getattr(mlm.config, "tie_word_embeddings", True))
    head = head.float()
    towers = {"shared": model.encoder}
    if model.query_encoder is not None:
        towers = {"query": model.query_encoder, "document": model.encoder}
    heads = nn.ModuleDict()
    for i, (side, encoder) in enumerate(towers.items()):
        own = head if i == 0 else copy.deepcopy(head)
        if tied:
            embedding = encoder.get_input_embeddings().weight
            own.get_submodule(decoder_name).weight = embedding
        heads[side] = own
    return MaskedLmHeads(heads, missing, tied)


def masked_lm_loss(head: nn.Module, encoding: AspectEncoding, labels: torch.Tensor) -> torch.Tensor:
    """BERT's MLM loss: the mean cross-entropy of the original tokens at the masked positions. ``labels``
    (n, L) are aligned with the text ids the encoding read (``IGNORE`` where nothing is predicted)."""
    hidden = encoding.hidden  # (n, W, H)
    width = min(labels.shape[1], hidden.shape[1] - encoding.text_start)
    text = hidden[:, encoding.text_start : encoding.text_start + width]  # (n, L, H)
    labels = labels[:, :width]
    chosen = labels != IGNORE  # (n, L)
    if not chosen.any():
        return hidden.sum() * 0.0  # nothing masked in this batch; keep the graph
    logits = head(text[chosen]).float()  # (m, V)
    return F.cross_entropy(logits, labels[chosen])
