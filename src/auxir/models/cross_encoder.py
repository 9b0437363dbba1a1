"""Cross-encoder reranker: any Hugging Face encoder, a pluggable scorer and a token-prediction head.

Saved as a standard sequence-classification checkpoint (``config.json`` + ``model.safetensors`` +
tokenizer) so Hugging Face and sentence-transformers load it directly. auxir's own settings live under
the ``auxir`` key of ``config.json`` and the extra heads in ``auxir_heads.safetensors``; both round-trip
through ``save_pretrained``/``from_pretrained``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from auxir.io import atomic_directory
from auxir.models.hf import load_tokenizer_and_model, resolve_model_name
from auxir.models.pair_template import PairTemplate
from auxir.models.scorers import build_scorer
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


class CrossEncoder(nn.Module):
    def __init__(self, backbone: nn.Module, tokenizer, config: CrossEncoderConfig):
        super().__init__()
        self.backbone = backbone  # an AutoModelForSequenceClassification with num_labels=1
        self.tokenizer = tokenizer
        self.config = config
        self.template = PairTemplate.from_tokenizer(tokenizer)
        hf_config = backbone.config
        self.scorer = build_scorer(
            config.scorer, hf_config.hidden_size, hf_config.num_hidden_layers, config.scorer_params
        )
        embeddings = backbone.get_input_embeddings()
        self.token_head = TokenHead(
            hf_config.hidden_size,
            embeddings.num_embeddings,
            tied_to=embeddings if config.token_head == "tied" else None,
            transform=config.token_head_transform,
        )

    # ---- construction and persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, config: CrossEncoderConfig | None = None
    ) -> CrossEncoder:
        """Load an auxir checkpoint, or start a new reranker from any encoder (new heads start random)."""
        from transformers import AutoModelForSequenceClassification

        path = resolve_model_name(str(name_or_path))
        tokenizer, backbone = load_tokenizer_and_model(path, AutoModelForSequenceClassification, num_labels=1)
        # Recent transformers load a checkpoint in its stored dtype: an fp16 file would give fp16 weights,
        # which AdamW cannot update (steps underflow). Keep fp32 master weights; autocast does bf16.
        backbone = backbone.float()
        stored = getattr(backbone.config, "auxir", None)
        if config is None:
            config = CrossEncoderConfig.from_dict(stored) if stored else CrossEncoderConfig()
        model = cls(backbone, tokenizer, config)
        heads = Path(path) / HEADS_FILE
        if stored and heads.exists():
            missing, unexpected = model.heads().load_state_dict(load_file(str(heads)), strict=False)
            if unexpected or [k for k in missing if not k.startswith("token_head._tied")]:
                raise ValueError(
                    f"{heads}: head weights do not match the config (missing {missing}, unexpected {unexpected})"
                )
        return model

    def heads(self) -> nn.ModuleDict:
        return nn.ModuleDict({"scorer": self.scorer, "token_head": self.token_head})

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the checkpoint into a temporary folder and move it into place only once complete."""
        with atomic_directory(directory) as tmp:
            self.backbone.config.auxir = asdict(self.config)
            self.backbone.config.architectures = [type(self.backbone).__name__]
            self.backbone.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            state = {k: v.detach().contiguous().cpu() for k, v in self.heads().state_dict().items()}
            save_file(state, str(tmp / HEADS_FILE))
            (tmp / "auxir.json").write_text(json.dumps({"format": "auxir-cross-encoder", "version": 1}))

    # ---- forward ----------------------------------------------------------------------------------
    def pack(self, query, query_len, doc, doc_len) -> PairInputs:
        """Frame query and document token ids as one input per row, in the configured order."""
        if self.config.segment_order == "query_first":
            packed = self.template.pack(query, query_len, doc, doc_len)
            query_start = torch.full_like(packed.second_offset, packed.first_offset)
            doc_start = packed.second_offset
        else:
            packed = self.template.pack(doc, doc_len, query, query_len)
            doc_start = torch.full_like(packed.second_offset, packed.first_offset)
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

    def forward(self, inputs: PairInputs) -> CrossEncoderOutput:
        out = self.backbone(
            input_ids=inputs.input_ids,
            attention_mask=inputs.attention_mask,
            token_type_ids=inputs.token_type_ids,
            output_hidden_states=True,
        )
        hidden_states = out.hidden_states if self.scorer.needs_hidden_states else None
        query_mask, doc_mask = inputs.segment_masks() if self.scorer.needs_hidden_states else (None, None)
        scores = self.scorer(
            out.logits.squeeze(-1), hidden_states, inputs.attention_mask, query_mask, doc_mask
        )
        return CrossEncoderOutput(scores=scores.float(), last_hidden_state=out.hidden_states[-1])

    def score(self, query, query_len, doc, doc_len) -> torch.Tensor:  # (n,)
        return self(self.pack(query, query_len, doc, doc_len)).scores
