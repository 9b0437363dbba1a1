"""Opening a saved index of any kind, and checking it against a collection.

The contract every first stage follows lives in :mod:`auxir.retrieval.contract` (re-exported here); this
module sits above the first stages and imports them only when opening one.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from auxir.data.records import Doc
from auxir.retrieval.contract import QueryInput, Retriever, check_doc_ids, check_k, query_texts, sort_run
from auxir.retrieval.index_files import corpus_fingerprint, read_manifest

__all__ = [
    "QueryInput",
    "Retriever",
    "check_corpus",
    "check_doc_ids",
    "check_k",
    "load_retriever",
    "query_texts",
    "sort_run",
]

logger = logging.getLogger(__name__)


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
