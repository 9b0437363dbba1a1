"""One object for a test collection: documents, queries, judgements per split and first-stage runs.

This module imports no loader: the loaders (:mod:`auxir.data.beir`, :mod:`auxir.data.irds`) import it, and
:func:`auxir.data.dataset.load_dataset` picks one. Loaders fill a :class:`Dataset` with lazy parts, so that
opening a collection reads nothing large until it is used. Judgements and runs are checked against the
queries and documents when read: real collections do point at documents they do not ship (TREC DL 2019 here
lacks text for half its judged passages), so by default unknown ids are counted in one warning; with
``strict=True`` they raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from auxir.data.docstore import DocStore
from auxir.data.errors import DataFormatError
from auxir.data.records import Qrel, Query, ScoredDoc
from auxir.data.trec import read_run

__all__ = ["Dataset"]

logger = logging.getLogger(__name__)

QueriesSource = Mapping[str, Query] | Callable[[], Mapping[str, Query]]


class Dataset:
    """A collection: ``docs`` (a :class:`DocStore`), ``queries``, ``splits`` with qrels, and ``runs``.

    Args:
        name: a short name for messages and reports.
        docs: the documents.
        queries: the queries by id, or a function returning them (called on first use).
        qrels: split name -> function returning that split's judgements (called once, on first use).
        runs: run name -> TREC run file.
        strict: raise instead of warning when qrels or runs name unknown queries or documents.
    """

    def __init__(
        self,
        name: str,
        docs: DocStore,
        queries: QueriesSource,
        qrels: Mapping[str, Callable[[], list[Qrel]]],
        runs: Mapping[str, Path] | None = None,
        strict: bool = False,
    ):
        self.name = name
        self.docs = docs
        self._queries_source = queries
        self._queries: dict[str, Query] | None = None
        self._qrels_loaders = dict(qrels)
        self._qrels: dict[str, list[Qrel]] = {}
        self.runs: Mapping[str, Path] = runs if runs is not None else {}
        self.strict = strict

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, splits={self.splits}, runs={sorted(self.runs)})"

    @property
    def splits(self) -> list[str]:
        return list(self._qrels_loaders)

    @property
    def queries(self) -> dict[str, Query]:
        if self._queries is None:
            source = self._queries_source
            self._queries = dict(source() if callable(source) else source)
        return self._queries

    def qrels(self, split: str) -> list[Qrel]:
        """Judgements of ``split``, in file order. Unknown ids: see the module docstring."""
        if split not in self._qrels_loaders:
            raise ValueError(
                f"dataset {self.name!r} has no split {split!r}; available splits: {', '.join(self.splits) or 'none'}"
            )
        if split not in self._qrels:
            qrels = self._qrels_loaders[split]()
            self._check_ids(f"qrels of split {split!r}", qrels)
            self._qrels[split] = qrels
        return list(self._qrels[split])

    def queries_for(self, split: str) -> dict[str, Query]:
        """The queries judged in ``split``, in order of first judgement (unknown query ids are left out)."""
        queries = self.queries
        return {
            qrel.query_id: queries[qrel.query_id] for qrel in self.qrels(split) if qrel.query_id in queries
        }

    def run(self, name: str) -> list[ScoredDoc]:
        """Read run ``name`` (a key of ``runs``), checking its ids like :meth:`qrels`."""
        if name not in self.runs:
            raise ValueError(
                f"dataset {self.name!r} has no run {name!r}; available runs: {', '.join(self.runs) or 'none'}"
            )
        scored = read_run(self.runs[name])
        self._check_ids(f"run {name!r} ({self.runs[name]})", scored)
        return scored

    def _check_ids(self, what: str, records: Iterable[Qrel | ScoredDoc]) -> None:
        queries, docs = self.queries, self.docs
        no_query = no_doc = 0
        first_query = first_doc = ""
        for record in records:
            if record.query_id not in queries:
                no_query += 1
                first_query = first_query or record.query_id
            if record.doc_id not in docs:
                no_doc += 1
                first_doc = first_doc or record.doc_id
        problems = []
        if no_query:
            problems.append(f"{no_query} lines name a query id with no query (first: {first_query!r})")
        if no_doc:
            problems.append(f"{no_doc} lines name a doc id with no document (first: {first_doc!r})")
        if not problems:
            return
        if self.strict:
            raise DataFormatError(
                f"{self.name}: {what}",
                None,
                "ids that resolve to a query and a document",
                "; ".join(problems),
            )
        logger.warning("%s, %s: %s (pass strict=True to raise instead)", self.name, what, "; ".join(problems))
