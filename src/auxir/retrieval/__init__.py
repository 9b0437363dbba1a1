"""First-stage retrieval: BM25 (bm25s), dense encoders, embedding stores and FAISS indexes.

Names are imported on first use, so ``import auxir.retrieval`` does not import torch or FAISS.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "BM25Config": "auxir.retrieval.bm25",
    "BM25Index": "auxir.retrieval.bm25",
    "EncoderConfig": "auxir.retrieval.dense",
    "DenseEncoder": "auxir.retrieval.dense",
    "EmbeddingStore": "auxir.retrieval.embeddings",
    "DenseIndexConfig": "auxir.retrieval.faiss_index",
    "DenseIndex": "auxir.retrieval.faiss_index",
    "DenseRetriever": "auxir.retrieval.dense_retriever",
    "Retriever": "auxir.retrieval.contract",
    "load_retriever": "auxir.retrieval.retriever",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'auxir.retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
