"""Models: the cross-encoder reranker (scorers, token-prediction head), the encoder-decoder reranker, the
bi-encoder and CODER's query encoder.

Names are imported on first use, so ``import auxir.models`` does not import torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AspectEncoder": "auxir.models.aspect_encoder",
    "AspectEncoderConfig": "auxir.models.aspect_encoder",
    "BiEncoder": "auxir.models.bi_encoder",
    "BiEncoderConfig": "auxir.models.bi_encoder",
    "CoderConfig": "auxir.models.coder",
    "CoderModel": "auxir.models.coder",
    "CrossEncoder": "auxir.models.cross_encoder",
    "CrossEncoderConfig": "auxir.models.cross_encoder",
    "Seq2SeqRanker": "auxir.models.seq2seq",
    "Seq2SeqRankerConfig": "auxir.models.seq2seq",
}

__all__ = [
    "AspectEncoder",
    "AspectEncoderConfig",
    "BiEncoder",
    "BiEncoderConfig",
    "CoderConfig",
    "CoderModel",
    "CrossEncoder",
    "CrossEncoderConfig",
    "Seq2SeqRanker",
    "Seq2SeqRankerConfig",
]

if TYPE_CHECKING:
    from auxir.models.aspect_encoder import AspectEncoder, AspectEncoderConfig
    from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig
    from auxir.models.coder import CoderConfig, CoderModel
    from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
    from auxir.models.seq2seq import Seq2SeqRanker, Seq2SeqRankerConfig


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'auxir.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
