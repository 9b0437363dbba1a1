"""BEIR directories: ``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv`` and, here, ``runs/*.trec``."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from auxir.data.collection import Dataset
from auxir.data.docstore import JsonlDocStore, parse_beir_record
from auxir.data.errors import DataFormatError
from auxir.data.records import Query
from auxir.data.trec import iter_lines, read_qrels

__all__ = ["load_beir", "read_queries_jsonl"]

logger = logging.getLogger(__name__)

_CORPUS_NAMES = ("corpus.jsonl", "corpus.jsonl.gz")


def read_queries_jsonl(path: str | Path) -> dict[str, Query]:
    """BEIR queries (``{"_id", "text"[, "metadata"]}`` per line) by id, in file order.

    Other keys (e.g. a ``title``) go into ``metadata``. Queries with empty text are kept and counted in one
    warning: dropping them would silently change what a split evaluates.
    """
    queries: dict[str, Query] = {}
    empty: list[str] = []
    for line_no, text in iter_lines(path):
        query_id, record = parse_beir_record(text, path, line_no, "query")
        query_text = record["text"]
        if query_id in queries:
            raise DataFormatError(path, line_no, "unique query ids", f"{query_id!r} again")
        metadata = record.get("metadata") or {}
        extra = {key: value for key, value in record.items() if key not in ("_id", "text", "metadata")}
        if not query_text.strip():
            empty.append(query_id)
        queries[query_id] = Query(query_id, query_text, {**metadata, **extra} if extra else metadata)
    if empty:
        logger.warning(
            "%s: %d queries have empty text; kept (first ids: %s)", path, len(empty), ", ".join(empty[:5])
        )
    return queries


def load_beir(path: str | Path, *, strict: bool = False, cache: str | Path | None = None) -> Dataset:
    """Open a BEIR directory lazily: the corpus is indexed on first lookup, queries read on first use.

    Splits are the stems of ``qrels/*.tsv`` (sorted); runs are ``runs/<name>.trec`` keyed by ``<name>``.
    """
    root = Path(path)
    corpus = next((root / name for name in _CORPUS_NAMES if (root / name).is_file()), None)
    if corpus is None:
        raise FileNotFoundError(f"{root}: no corpus file; expected one of {', '.join(_CORPUS_NAMES)}")
    queries_path = root / "queries.jsonl"
    if not queries_path.is_file():
        raise FileNotFoundError(f"{root}: no queries file; expected queries.jsonl")
    qrels_dir = root / "qrels"
    qrels = (
        {p.stem: functools.partial(read_qrels, p) for p in sorted(qrels_dir.glob("*.tsv"))}
        if qrels_dir.is_dir()
        else {}
    )
    runs_dir = root / "runs"
    runs = {p.name[: -len(".trec")]: p for p in sorted(runs_dir.glob("*.trec"))} if runs_dir.is_dir() else {}
    return Dataset(
        name=root.resolve().name,
        docs=JsonlDocStore(corpus, cache=cache),
        queries=functools.partial(read_queries_jsonl, queries_path),
        qrels=qrels,
        runs=runs,
        strict=strict,
    )
