"""Inner-product search over document embeddings with FAISS (Johnson et al., 2019; Douze et al., 2024).

Three index kinds, all with the inner-product metric (cosine when the embeddings are normalised):

* ``flat`` — ``IndexFlatIP``: exact, brute force; the default and the reference for the other two;
* ``hnsw`` — ``IndexHNSWFlat`` (Malkov & Yashunin, 2018): graph search, ``hnsw_m`` links per node,
  ``ef_construction`` / ``ef_search`` candidate lists at build / query time;
* ``ivf`` — ``IndexIVFFlat``: k-means into ``nlist`` cells (default ``4·sqrt(n)``, the FAISS wiki's
  rule of thumb, with at least 39 training points per cell), ``nprobe`` cells visited per query.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import faiss
import numpy as np

from auxir.data.records import ScoredDoc
from auxir.io import atomic_path
from auxir.retrieval.contract import check_doc_ids, check_k
from auxir.retrieval.index_files import atomic_directory, read_ids, read_manifest, write_ids, write_manifest

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivf"]
_KINDS = get_args(IndexKind)
_INDEX_FILE = "index.faiss"
_DOC_IDS_FILE = "doc_ids.json"


@dataclass
class DenseIndexConfig:
    """Which FAISS index, and its build and search parameters (ignored by kinds that do not use them)."""

    kind: IndexKind = "flat"
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"DenseIndexConfig.kind: expected one of {_KINDS}, found {self.kind!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"DenseIndexConfig.{name}: expected an integer >= 1, found {getattr(self, name)!r}"
                )
        if self.nlist is not None and self.nlist < 1:
            raise ValueError(
                f"DenseIndexConfig.nlist: expected None or an integer >= 1, found {self.nlist!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DenseIndexConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def _as_matrix(vectors: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{what}: expected a 2-d array (count, dim), found shape {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(f"{what}: expected vectors of dimension {dim}, found {matrix.shape[1]}")
    return matrix


class DenseIndex:
    """A FAISS index whose row ``i`` is the document ``doc_ids[i]``.

    >>> import numpy as np
    >>> index = DenseIndex.build(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    >>> [row.doc_id for row in index.search(np.array([[0.1, 0.9, 0.0]]), ["q"], k=2)]
    ['b', 'a']
    """

    def __init__(self, index: faiss.Index, doc_ids: list[str], config: DenseIndexConfig):
        if index.ntotal != len(doc_ids):
            raise ValueError(
                f"DenseIndex: expected one doc id per vector, found {len(doc_ids)} for {index.ntotal}"
            )
        self.index = index
        self.doc_ids = doc_ids
        self.config = config
        self._apply_search_parameters()

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(
        cls, embeddings: np.ndarray, doc_ids: Sequence[str], config: DenseIndexConfig | None = None
    ) -> DenseIndex:
        """Index ``embeddings`` (``(n, dim)``; row ``i`` belongs to ``doc_ids[i]``)."""
        config = config or DenseIndexConfig()
        doc_ids = check_doc_ids(doc_ids, "DenseIndex.build")
        matrix = _as_matrix(embeddings, "DenseIndex.build embeddings")
        if matrix.shape[0] != len(doc_ids):
            raise ValueError(
                f"DenseIndex.build: expected one doc id per row, found {len(doc_ids)} ids for {matrix.shape[0]} rows"
            )
        n, dim = matrix.shape
        if config.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif config.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.ef_construction
        else:
            nlist = config.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
            if nlist > n:
                raise ValueError(
                    f"DenseIndexConfig.nlist: expected at most {n} cells for {n} vectors, found {nlist}"
                )
            config = dataclasses.replace(config, nlist=nlist)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = config.seed
            index.train(matrix)
        index.add(matrix)
        logger.info("FAISS %s index: %d vectors of dimension %d", config.kind, n, dim)
        return cls(index, doc_ids, config)

    def _apply_search_parameters(self) -> None:
        # Search-time parameters are not all kept by faiss.write_index: set them from the config.
        if self.config.kind == "hnsw":
            faiss.downcast_index(self.index).hnsw.efSearch = self.config.ef_search
        elif self.config.kind == "ivf":
            faiss.extract_index_ivf(self.index).nprobe = self.config.nprobe

    def search(
        self, query_embeddings: np.ndarray, query_ids: Sequence[str], k: int = 1000
    ) -> list[ScoredDoc]:
        """Top-``k`` documents by inner product for each query vector, best first."""
        check_k(k)
        queries = _as_matrix(query_embeddings, "DenseIndex.search query_embeddings", self.dim)
        if queries.shape[0] != len(query_ids):
            raise ValueError(
                f"DenseIndex.search: expected one query id per row, found {len(query_ids)} ids "
                f"for {queries.shape[0]} rows"
            )
        if not len(query_ids):
            return []
        scores, rows = self.index.search(queries, min(k, len(self.doc_ids)))  # (n_queries, k) each
        results: list[ScoredDoc] = []
        for query_id, query_scores, query_rows in zip(query_ids, scores, rows, strict=True):
            for score, row in zip(query_scores, query_rows, strict=True):
                if row >= 0:  # -1: fewer than k found (hnsw / ivf)
                    results.append(ScoredDoc(str(query_id), self.doc_ids[row], float(score)))
        return results

    def save(self, directory: str | Path) -> None:
        """Write ``index.faiss``, the doc ids and the configuration into ``directory`` (atomically)."""
        with atomic_directory(directory) as tmp:
            with atomic_path(tmp / _INDEX_FILE) as file:
                faiss.write_index(self.index, str(file))
            write_ids(tmp / _DOC_IDS_FILE, self.doc_ids)
            write_manifest(tmp, "faiss", self.config.to_dict(), num_docs=len(self), dim=self.dim)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> DenseIndex:
        """Open an index written by :meth:`save` (``mmap``: FAISS reads the vectors from disk on demand)."""
        manifest = read_manifest(directory, kind="faiss")
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(Path(directory) / _INDEX_FILE), flags)
        doc_ids = read_ids(Path(directory) / _DOC_IDS_FILE, expected_count=index.ntotal)
        return cls(index, doc_ids, DenseIndexConfig.from_dict(manifest["config"]))
