"""auxir: training neural rankers and retrievers with auxiliary objectives.

The public Python API (see ``docs/python-api.md``)::

    from auxir import CrossEncoder, load_dataset, evaluate, rerank

Names are imported on first use, so ``import auxir`` stays cheap (no torch, transformers or FAISS until a
name that needs them is read).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BiEncoder": "auxir.models.bi_encoder",
    "BiEncoderConfig": "auxir.models.bi_encoder",
    "CrossEncoder": "auxir.models.cross_encoder",
    "CrossEncoderConfig": "auxir.models.cross_encoder",
    "load_dataset": "auxir.data.dataset",
    "load_recipe": "auxir.recipe",
    "run_experiment": "auxir.experiment",
    "evaluate": "auxir.evaluation.metrics",
    "compare": "auxir.evaluation.compare",
    "BM25Index": "auxir.retrieval.bm25",
    "rerank": "auxir.reranking",
    "fuse": "auxir.evaluation.fusion",
    "choose_weight": "auxir.evaluation.fusion",
    "Trainer": "auxir.training.trainer",
}

# Written out (not ``sorted(_EXPORTS)``) so linters and type checkers read the exports statically.
__all__ = [
    "BM25Index",
    "BiEncoder",
    "BiEncoderConfig",
    "CrossEncoder",
    "CrossEncoderConfig",
    "Trainer",
    "choose_weight",
    "compare",
    "evaluate",
    "fuse",
    "load_dataset",
    "load_recipe",
    "rerank",
    "run_experiment",
]

if TYPE_CHECKING:
    from auxir.data.dataset import load_dataset
    from auxir.evaluation.compare import compare
    from auxir.evaluation.fusion import choose_weight, fuse
    from auxir.evaluation.metrics import evaluate
    from auxir.experiment import run_experiment
    from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig
    from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
    from auxir.recipe import load_recipe
    from auxir.reranking import rerank
    from auxir.retrieval.bm25 import BM25Index
    from auxir.training.trainer import Trainer


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'auxir' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
