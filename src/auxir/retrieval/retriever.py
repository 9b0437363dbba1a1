"""The contract every first stage follows, and opening a saved index of any kind.

Like PyTerrier's retrieval transformers, every first stage maps queries to one data contract,
``ScoredDoc(query_id, doc_id, score)`` rows, best first within each query.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from auxir.data.records import Doc, Query, ScoredDoc
from auxir.retrieval.index_files import corpus_fingerprint, read_manifest

logger = logging.getLogger(__name__)

QueryInput = Mapping[str, str] | Mapping[str, Query]


class Retriever(Protocol):
    """A first stage: ``search`` queries, ``save`` to a directory that :func:`load_retriever` opens."""

    def search(self, queries: QueryInput, k: int = 1000) -> list[ScoredDoc]: ...

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


def load_retriever(directory: str | Path, device: str | None = None) -> Retriever:
    """Open a saved index of any kind (BM25 or dense) by reading its manifest.

    ``device`` applies to dense indexes (where the query encoder runs); ``None`` keeps the saved choice.
    """
    kind = read_manifest(directory)["kind"]
    if kind == "bm25":
        from auxir.retrieval.bm25 import BM25Index

        return BM25Index.load(directory)
    if kind == "dense":
        from auxir.retrieval.dense_retriever import DenseRetriever

        return DenseRetriever.load(directory, device=device)
    raise ValueError(f"{directory}: expected an index of kind 'bm25' or 'dense', found {kind!r}")


def check_corpus(directory: str | Path, docs: Collection[Doc], collection: str) -> None:
    """Refuse to search the index in ``directory`` for a collection it was not built from.

    ``docs`` are the collection's documents (a :class:`~auxir.data.docstore.DocStore`), ``collection`` its
    name for messages. The counts are compared first; the ids are hashed only when they agree. An index
    written before manifests recorded a fingerprint cannot be checked: that is a warning, not an error.
    """
    stored = read_manifest(directory).get("corpus")
    if stored is None:
        logger.warning(
            "%s: the index records no fingerprint of its corpus (built by an older auxir), so it cannot be "
            "checked against %s; rebuild it with 'auxir index' to have it checked",
            directory,
            collection,
        )
        return
    count = len(docs)
    if count == stored["num_docs"]:
        ids = docs.ids() if hasattr(docs, "ids") else (doc.doc_id for doc in docs)
        found = corpus_fingerprint(ids)
        if found == stored:
            return
        detail = (
            f"both hold {count} documents, but with different ids (sha256 of the sorted ids: index "
            f"{stored['doc_ids_sha256'][:12]}, collection {found['doc_ids_sha256'][:12]})"
        )
    else:
        detail = f"the index holds {stored['num_docs']} documents, {collection} {count}"
    raise ValueError(
        f"{directory}: expected an index built from the documents of {collection}, found an index of another "
        f"corpus: {detail}. Index {collection} with 'auxir index', or pass the collection this index was "
        "built from (queries given with --queries are not checked)"
    )
