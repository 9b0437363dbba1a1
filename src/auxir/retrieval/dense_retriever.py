"""Dense first stage: a :class:`DenseEncoder` for queries over a :class:`DenseIndex` of document vectors.

The bi-encoder retrieval of DPR (Karpukhin et al., 2020) and sentence-transformers' semantic search:
documents encoded once, offline; each query encoded at search time and matched by inner product.
A saved retriever is a directory::

    auxir_index.json   # kind "dense"; config: the encoder configuration (as resolved at build time);
                       # corpus: the fingerprint of the indexed doc ids
    index/             # the DenseIndex (FAISS file, doc ids, its configuration)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

from auxir.data.records import Doc, ScoredDoc
from auxir.retrieval.contract import QueryInput, check_k, query_texts
from auxir.retrieval.dense import DenseEncoder, EncoderConfig
from auxir.retrieval.embeddings import EmbeddingStore
from auxir.retrieval.faiss_index import DenseIndex, DenseIndexConfig
from auxir.retrieval.index_files import atomic_directory, read_manifest, write_manifest

logger = logging.getLogger(__name__)

_INDEX_DIR = "index"


class DenseRetriever:
    """Encode queries with ``encoder`` and search them in ``index``."""

    def __init__(self, encoder: DenseEncoder, index: DenseIndex):
        if encoder.dim != index.dim:
            raise ValueError(
                f"DenseRetriever: expected an index of dimension {encoder.dim} (the encoder's), found {index.dim}"
            )
        self.encoder = encoder
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def build(
        cls,
        docs: Iterable[Doc],
        encoder: DenseEncoder | EncoderConfig,
        index_config: DenseIndexConfig | None = None,
        show_progress: bool = False,
    ) -> DenseRetriever:
        """Encode ``docs`` (title and text joined) and index their vectors."""
        encoder = encoder if isinstance(encoder, DenseEncoder) else DenseEncoder(encoder)
        store = encoder.encode_docs(docs, show_progress=show_progress)
        return cls.from_embeddings(store, encoder, index_config)

    @classmethod
    def from_embeddings(
        cls,
        store: EmbeddingStore,
        encoder: DenseEncoder | EncoderConfig,
        index_config: DenseIndexConfig | None = None,
    ) -> DenseRetriever:
        """Index precomputed document vectors; ``encoder`` must be the one that produced them."""
        encoder = encoder if isinstance(encoder, DenseEncoder) else DenseEncoder(encoder)
        made_by = store.metadata.get("encoder", {}).get("model")
        if made_by and made_by != encoder.config.model:
            logger.warning(
                "embeddings were made by %r, queries will be encoded by %r", made_by, encoder.config.model
            )
        return cls(encoder, DenseIndex.build(store.embeddings, store.ids, index_config))

    def search(self, queries: QueryInput, k: int = 1000, show_progress: bool = False) -> list[ScoredDoc]:
        """Top-``k`` documents per query by inner product, best first."""
        check_k(k)
        query_ids, texts = query_texts(queries)
        vectors = self.encoder.encode_queries(texts, show_progress=show_progress)
        return self.index.search(vectors, query_ids, k)

    def save(self, directory: str | Path) -> None:
        """Write the encoder configuration and the index into ``directory`` (atomically)."""
        with atomic_directory(directory) as tmp:
            self.index.save(tmp / _INDEX_DIR)
            write_manifest(
                tmp,
                "dense",
                self.encoder.config.to_dict(),
                doc_ids=self.index.doc_ids,
                num_docs=len(self.index),
            )

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None, mmap: bool = False) -> DenseRetriever:
        """Open a saved retriever; ``device`` overrides the saved encoder device (``None`` keeps it)."""
        config = EncoderConfig.from_dict(read_manifest(directory, kind="dense")["config"])
        if device is not None:
            config = dataclasses.replace(config, device=device)
        index = DenseIndex.load(Path(directory) / _INDEX_DIR, mmap=mmap)
        return cls(DenseEncoder(config), index)
