"""The contract every first stage follows, and the checks its implementations share.

Like PyTerrier's retrieval transformers, every first stage maps queries to one data contract,
``ScoredDoc(query_id, doc_id, score)`` rows, best first within each query. The first stages
(:mod:`auxir.retrieval.bm25`, :mod:`auxir.retrieval.dense_retriever`, :mod:`auxir.retrieval.faiss_index`)
import from here; :mod:`auxir.retrieval.retriever`, which opens any of them, sits above them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from auxir.data.records import Query, ScoredDoc

QueryInput = Mapping[str, str] | Mapping[str, Query]


class Retriever(Protocol):
    """A first stage: ``search`` queries, ``save`` to a directory that ``load_retriever`` opens."""

    def search(self, queries: QueryInput, k: int = 1000, show_progress: bool = False) -> list[ScoredDoc]: ...

    def save(self, directory: str | Path) -> None: ...


def query_texts(queries: QueryInput) -> tuple[list[str], list[str]]:
    """Split ``{query_id: text or Query}`` into parallel lists of ids and texts."""
    if not isinstance(queries, Mapping):
        raise ValueError(
            f"queries: expected a mapping of query_id to text or Query, found {type(queries).__name__}"
        )
    ids: list[str] = []
    texts: list[str] = []
    for query_id, query in queries.items():
        text = query.text if isinstance(query, Query) else query
        if not isinstance(text, str):
            raise ValueError(f"query {query_id!r}: expected a str or Query, found {type(query).__name__}")
        ids.append(str(query_id))
        texts.append(text)
    return ids, texts


def check_k(k: int) -> int:
    """Validate the cutoff of a search."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k: expected an integer >= 1, found {k!r}")
    return k


def check_doc_ids(doc_ids: Iterable[str], what: str = "corpus") -> list[str]:
    """Validate the ids of an index: at least one, all distinct."""
    ids = list(doc_ids)
    if not ids:
        raise ValueError(f"{what}: expected at least one document, found an empty corpus")
    seen: set[str] = set()
    for doc_id in ids:
        if doc_id in seen:
            raise ValueError(f"{what}: expected distinct doc ids, found {doc_id!r} more than once")
        seen.add(doc_id)
    return ids


def sort_run(rows: list[ScoredDoc]) -> list[ScoredDoc]:
    """Order rows by query (first appearance), then score descending, then doc id: a deterministic run."""
    order: dict[str, int] = {}
    for row in rows:
        order.setdefault(row.query_id, len(order))
    return sorted(rows, key=lambda r: (order[r.query_id], -r.score, r.doc_id))
