"""``irds:<id>`` collections through the ir_datasets library, mapped onto auxir's records.

ir_datasets records are NamedTuples whose fields differ per collection. The mapping: ``doc_id``/``query_id``
stay ids; ``text`` is the field named ``text`` (else ``body``, else the record's ``default_text()``);
``title`` is the field named ``title`` if any; every other field goes into ``metadata``. For queries without
a ``text`` field (TREC topics: title/description/narrative) the text is ``default_text()``, which is the
title in ir_datasets.

Splits: an ir_datasets id names one set of judgements, so an ``irds:`` dataset has one split. It is named
after the id's last component when that is a usual split name (``beir/scifact/train`` -> ``train``),
otherwise ``test`` (``msmarco-passage/trec-dl-2019/judged`` -> ``test``); none if the id has no qrels.
Scored documents, where the id has them, are the run ``scoreddocs``; its TREC file is written into the
auxir cache on first access of ``runs["scoreddocs"]``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from auxir.data.collection import Dataset
from auxir.data.docstore import cache_dir
from auxir.data.records import Doc, Qrel, Query, ScoredDoc
from auxir.data.trec import write_run

__all__ = ["IrdsDocStore", "irds_doc", "irds_query", "load_irds"]

_SPLIT_NAMES = {"train", "dev", "test", "validation", "valid", "eval", "val"}


def _fields(record: Any) -> dict[str, Any]:
    return record._asdict() if hasattr(record, "_asdict") else dict(vars(record))


def irds_doc(record: Any) -> Doc:
    """An ir_datasets document -> :class:`Doc` (see the module docstring for the field mapping)."""
    fields = _fields(record)
    doc_id = str(fields.pop("doc_id"))
    title = fields.pop("title", "") or ""
    if "text" in fields:
        text = fields.pop("text")
    elif "body" in fields:
        text = fields.pop("body")
    elif hasattr(record, "default_text"):
        text = record.default_text()
    else:
        text = ""
    return Doc(doc_id, str(text or ""), str(title), fields)


def irds_query(record: Any) -> Query:
    """An ir_datasets query -> :class:`Query` (see the module docstring for the field mapping)."""
    fields = _fields(record)
    query_id = str(fields.pop("query_id"))
    if "text" in fields:
        text = fields.pop("text")
    elif hasattr(record, "default_text"):
        text = record.default_text()
    else:
        text = ""
    return Query(query_id, str(text or ""), fields)


class IrdsDocStore:
    """The :class:`~auxir.data.docstore.DocStore` protocol over an ir_datasets dataset's ``docs_store()``.

    ir_datasets builds its own lookup structure (beside its downloaded files) on the first random access.
    """

    def __init__(self, dataset: Any, dataset_id: str):
        self._dataset = dataset
        self._id = dataset_id
        self._store: Any = None
        self._len: int | None = None

    def __repr__(self) -> str:
        return f"IrdsDocStore({self._id!r})"

    def _lookup(self) -> Any:
        if self._store is None:
            self._store = self._dataset.docs_store()
        return self._store

    def __iter__(self) -> Iterator[Doc]:
        for record in self._dataset.docs_iter():
            yield irds_doc(record)

    def __len__(self) -> int:
        if self._len is None:
            # None for formats that only know their size once their docstore is built.
            count = self._dataset.docs_count()
            self._len = int(count) if count is not None else sum(1 for _ in self._dataset.docs_iter())
        return self._len

    def __getitem__(self, doc_id: str) -> Doc:
        try:
            record = self._lookup().get(doc_id)
        except KeyError:
            record = None
        if record is None:
            raise KeyError(f"doc id {doc_id!r} is not in ir_datasets {self._id!r}")
        return irds_doc(record)

    def get(self, doc_id: str, default: Doc | None = None) -> Doc | None:
        try:
            return self[doc_id]
        except KeyError:
            return default

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.get(doc_id) is not None

    def get_many(self, doc_ids: Iterable[str]) -> list[Doc]:
        """Documents in the order asked; an unknown id raises ``KeyError``."""
        doc_ids = list(doc_ids)
        found = self._lookup().get_many(doc_ids)
        missing = [doc_id for doc_id in doc_ids if doc_id not in found]
        if missing:
            raise KeyError(
                f"{len(missing)} doc ids are not in ir_datasets {self._id!r} (first: {missing[0]!r})"
            )
        return [irds_doc(found[doc_id]) for doc_id in doc_ids]


class _ScoreddocsRun(Mapping[str, Path]):
    """``{"scoreddocs": path}`` whose TREC file is written on first access, not when the dataset opens."""

    def __init__(self, dataset: Any, dataset_id: str):
        self._dataset = dataset
        digest = hashlib.sha256(dataset_id.encode()).hexdigest()[:16]
        self._path = cache_dir() / "irds" / f"{dataset_id.replace('/', '_')}-{digest}" / "scoreddocs.trec"
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Path:
        if name != "scoreddocs":
            raise KeyError(name)
        with self._lock:
            if not self._path.is_file():
                scored = (
                    ScoredDoc(str(s.query_id), str(s.doc_id), float(s.score))
                    for s in self._dataset.scoreddocs_iter()
                )
                write_run(self._path, scored, tag="scoreddocs")
        return self._path

    def __iter__(self) -> Iterator[str]:
        return iter(["scoreddocs"])

    def __len__(self) -> int:
        return 1


def _split_name(dataset_id: str) -> str:
    last = dataset_id.rstrip("/").rsplit("/", 1)[-1]
    return last if last in _SPLIT_NAMES else "test"


def load_irds(dataset_id: str, *, strict: bool = False) -> Dataset:
    """Open ``ir_datasets.load(dataset_id)`` as a :class:`Dataset` (nothing is read until used).

    Raises ``ValueError`` naming the id if ir_datasets does not know it.
    """
    import ir_datasets  # imported here: it is slow to import and only this loader needs it

    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        raise ValueError(f"ir_datasets has no dataset {dataset_id!r} (spec 'irds:{dataset_id}')") from None
    if not dataset.has_docs():
        raise ValueError(f"ir_datasets dataset {dataset_id!r} has no documents; auxir needs a collection")

    def queries() -> dict[str, Query]:
        if not dataset.has_queries():
            return {}
        return {query.query_id: query for query in map(irds_query, dataset.queries_iter())}

    def qrels() -> list[Qrel]:
        return [Qrel(str(q.query_id), str(q.doc_id), int(q.relevance)) for q in dataset.qrels_iter()]

    return Dataset(
        name=f"irds:{dataset_id}",
        docs=IrdsDocStore(dataset, dataset_id),
        queries=queries,
        qrels={_split_name(dataset_id): qrels} if dataset.has_qrels() else {},
        runs=_ScoreddocsRun(dataset, dataset_id) if dataset.has_scoreddocs() else {},
        strict=strict,
    )
