"""Random access to a document collection by id, without holding its texts in memory.

A BEIR ``corpus.jsonl`` is read once to build a byte-offset index (doc id -> offset of its line); a lookup
is then one ``pread`` and one ``json.loads``. The index is cached in the user cache directory (never beside
the data, which may be read-only or shared), keyed by the corpus' absolute path, size and mtime, so a second
open costs a file read instead of a parse of the whole corpus. A ``corpus.jsonl.gz`` cannot be seeked
cheaply, so it is decompressed once into the same cache directory and indexed there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np

from auxir.data.errors import DataFormatError, describe_json_error
from auxir.data.records import Doc
from auxir.data.trec import UTF8_BOM, decode_line, iter_raw_lines
from auxir.io import atomic_path, atomic_write

__all__ = ["DocStore", "JsonlDocStore", "cache_dir", "parse_doc_line"]

logger = logging.getLogger(__name__)

_INDEX_VERSION = 1
_RESERVED = ("_id", "title", "text", "metadata")


@runtime_checkable
class DocStore(Protocol):
    """What every document collection offers, whatever its storage (BEIR jsonl, ir_datasets, ...)."""

    def __getitem__(self, doc_id: str) -> Doc: ...

    def get(self, doc_id: str, default: Doc | None = None) -> Doc | None: ...

    def __contains__(self, doc_id: object) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Doc]: ...

    def get_many(self, doc_ids: Iterable[str]) -> list[Doc]: ...


def cache_dir() -> Path:
    """``$AUXIR_CACHE``, else ``$XDG_CACHE_HOME/auxir``, else ``~/.cache/auxir``."""
    if os.environ.get("AUXIR_CACHE"):
        return Path(os.environ["AUXIR_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "auxir"


def parse_beir_record(text: str, path: str | Path, line_no: int | None, kind: str) -> tuple[str, dict]:
    """One BEIR JSON line (corpus or queries) -> (id, record), checking the fields both files share:
    a JSON object with a non-empty ``_id`` (integers become strings), a ``text`` and an object ``metadata``."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        snippet = text[max(0, err.pos - 20) : err.pos + 20].strip()
        raise DataFormatError(
            path, line_no, "a JSON object", f"{describe_json_error(err)} near {snippet!r}"
        ) from None
    if not isinstance(record, dict):
        raise DataFormatError(path, line_no, "a JSON object", type(record).__name__)
    missing = [key for key in ("_id", "text") if key not in record]
    if missing:
        raise DataFormatError(
            path,
            line_no,
            'fields "_id" and "text"',
            f"no {', '.join(repr(k) for k in missing)} (keys: {sorted(record)})",
        )
    record_id = record["_id"]
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if not isinstance(record_id, str) or not record_id:
        raise DataFormatError(path, line_no, 'a non-empty string "_id"', repr(record["_id"]))
    if not isinstance(record["text"], str):
        raise DataFormatError(
            path, line_no, f'a string "text" for {kind} {record_id!r}', type(record["text"]).__name__
        )
    if not isinstance(record.get("metadata") or {}, dict):
        raise DataFormatError(
            path, line_no, f'an object "metadata" for {kind} {record_id!r}', type(record["metadata"]).__name__
        )
    return record_id, record


def parse_doc_line(raw: bytes, path: str | Path, line_no: int | None) -> Doc:
    """One BEIR corpus line -> :class:`Doc`. ``_id`` and ``text`` are required; ``title`` defaults to ``""``.

    Keys other than ``_id``/``title``/``text``/``metadata`` are kept in ``metadata`` rather than dropped.
    Integer ids are accepted and turned into strings (some exports write them unquoted).
    """
    text = decode_line(raw, path, line_no)
    doc_id, record = parse_beir_record(text, path, line_no, "doc")
    if not isinstance(record.get("title", ""), str):
        raise DataFormatError(
            path, line_no, f'a string "title" for doc {doc_id!r}', type(record["title"]).__name__
        )
    metadata = record.get("metadata") or {}
    extra = {key: value for key, value in record.items() if key not in _RESERVED}
    if extra:
        metadata = {**metadata, **extra}
    return Doc(doc_id, record["text"], record.get("title", ""), metadata)


def _duplicate(path: Path, line_no: int, doc_id: str, first: int) -> DataFormatError:
    return DataFormatError(path, line_no, "unique doc ids", f"{doc_id!r} again (first on line {first})")


def _empty(path: Path) -> DataFormatError:
    return DataFormatError(path, None, "at least one document", "none")


class JsonlDocStore:
    """Documents of a BEIR ``corpus.jsonl`` (or ``.jsonl.gz``): streamed in file order, looked up by id.

    The index is built on the first lookup or ``len()``; iterating does not need it. Building it validates
    every line (bad JSON, missing ``_id``/``text``, duplicate ids or no documents at all raise
    :class:`DataFormatError`; iterating before the index exists checks ids and emptiness too). Documents
    with neither text nor title are kept (qrels may point at them) and counted in one warning; an empty text
    with a title is a normal document (title-only records exist in real collections) and is not reported.

    The store is safe to share between threads and to pickle into DataLoader workers: lookups use
    positional reads, and the open file is not part of the pickled state.
    """

    def __init__(self, path: str | Path, cache: str | Path | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: corpus file not found")
        self._cache_root = Path(cache) if cache is not None else None
        self._ids: dict[str, int] | None = None
        self._offsets: np.ndarray | None = None  # (n_docs + 1,) int64; the last entry is the file size
        self._plain: Path | None = None if self.path.suffix == ".gz" else self.path
        self._fd: int | None = None
        self._lock = threading.Lock()
        self.empty_doc_ids: list[str] = []

    def __repr__(self) -> str:
        size = len(self._ids) if self._ids is not None else "not indexed"
        return f"JsonlDocStore({str(self.path)!r}, docs={size})"

    # -- pickling: the descriptor and the lock stay behind ------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fd"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    # -- the DocStore protocol ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Doc]:
        # Before the index exists, duplicates and an empty file are caught here: an index built from this
        # stream (BM25, dense) would otherwise report them without the file and lines.
        checked = self._ids is not None
        first_line: dict[str, int] = {}
        for line_no, raw in iter_raw_lines(self._plain or self.path):
            if line_no == 1:
                raw = raw.removeprefix(UTF8_BOM)
            if not raw.strip():
                continue
            doc = parse_doc_line(raw, self.path, line_no)
            if not checked:
                seen = first_line.setdefault(doc.doc_id, line_no)
                if seen != line_no:
                    raise _duplicate(self.path, line_no, doc.doc_id, seen)
            yield doc
        if not checked and not first_line:
            raise _empty(self.path)

    def __len__(self) -> int:
        return len(self._index()[0])

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._index()[0]

    def __getitem__(self, doc_id: str) -> Doc:
        ids, offsets = self._index()
        try:
            position = ids[doc_id]
        except KeyError:
            raise KeyError(f"doc id {doc_id!r} is not in {self.path} ({len(ids)} documents)") from None
        start, end = int(offsets[position]), int(offsets[position + 1])
        raw = os.pread(self._descriptor(), end - start, start)
        # No line number here: the line was valid when indexed, so an error means the file changed since.
        return parse_doc_line(raw, self.path, None)

    def get(self, doc_id: str, default: Doc | None = None) -> Doc | None:
        try:
            return self[doc_id]
        except KeyError:
            return default

    def get_many(self, doc_ids: Iterable[str]) -> list[Doc]:
        """Documents in the order asked; an unknown id raises ``KeyError`` like ``store[doc_id]``."""
        return [self[doc_id] for doc_id in doc_ids]

    def ids(self) -> list[str]:
        """Doc ids in file order."""
        return list(self._index()[0])

    # -- index ----------------------------------------------------------------------------------------
    def _descriptor(self) -> int:
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    assert self._plain is not None  # set by _index()
                    self._fd = os.open(self._plain, os.O_RDONLY)
        return self._fd

    def _index(self) -> tuple[dict[str, int], np.ndarray]:
        if self._ids is None or self._offsets is None:
            with self._lock:
                if self._ids is None:
                    self._load_or_build()
        assert self._ids is not None and self._offsets is not None
        return self._ids, self._offsets

    def _cache_key_dir(self) -> Path:
        stat = self.path.stat()
        key = f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v{_INDEX_VERSION}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return (self._cache_root or cache_dir()) / "docstore" / f"{self.path.name}-{digest}"

    def _load_or_build(self) -> None:
        folder = self._cache_key_dir()
        if self._load_cached(folder):
            return
        if self.path.suffix == ".gz":
            self._build_from_gzip(folder)
        else:
            ids, offsets = self._scan(self.path, copy_to=None)
            self._ids, self._offsets = ids, offsets
            try:
                self._save(folder)
            except OSError as err:  # an unwritable cache only costs a re-scan next time
                logger.warning("could not cache the doc index of %s in %s: %s", self.path, folder, err)
        self._report_empty()

    def _build_from_gzip(self, folder: Path) -> None:
        plain = folder / "corpus.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        logger.info("decompressing %s into %s (once) to index it", self.path, plain)
        with atomic_path(plain) as tmp, open(tmp, "wb") as out:
            self._ids, self._offsets = self._scan(self.path, copy_to=out)
        self._plain = plain
        self._save(folder)

    def _scan(self, source: Path, copy_to: IO[bytes] | None) -> tuple[dict[str, int], np.ndarray]:
        """One pass over the corpus: validate each line, record where it starts, optionally copy it."""
        ids: dict[str, int] = {}
        offsets: list[int] = []
        first_line: dict[str, int] = {}
        empty: list[str] = []
        position = 0
        for line_no, raw in iter_raw_lines(source):
            if copy_to is not None:
                copy_to.write(raw)
            start, position = position, position + len(raw)
            if line_no == 1 and raw.startswith(UTF8_BOM):
                # The offset points past the mark, so a lookup of the first document reads no BOM either.
                raw, start = raw[len(UTF8_BOM) :], start + len(UTF8_BOM)
            if not raw.strip():
                continue
            doc = parse_doc_line(raw, self.path, line_no)
            if doc.doc_id in ids:
                raise _duplicate(self.path, line_no, doc.doc_id, first_line[doc.doc_id])
            ids[doc.doc_id] = len(offsets)
            first_line[doc.doc_id] = line_no
            offsets.append(start)
            if not doc.text.strip() and not doc.title.strip():
                empty.append(doc.doc_id)
        if not ids:
            raise _empty(self.path)
        offsets.append(position)
        self.empty_doc_ids = empty
        return ids, np.asarray(offsets, dtype=np.int64)

    def _report_empty(self) -> None:
        if self.empty_doc_ids:
            logger.warning(
                "%s: %d documents have neither text nor title; kept (first ids: %s)",
                self.path,
                len(self.empty_doc_ids),
                ", ".join(self.empty_doc_ids[:5]),
            )

    def _save(self, folder: Path) -> None:
        assert self._ids is not None and self._offsets is not None
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "offsets.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, self._offsets)
        with atomic_write(folder / "ids.json") as handle:
            json.dump(list(self._ids), handle, ensure_ascii=False)
        # meta.json is written last: its presence means the entry is complete.
        meta = {
            "version": _INDEX_VERSION,
            "source": str(self.path.resolve()),
            "plain": str(self._plain),
            "n_docs": len(self._ids),
            "empty_doc_ids": self.empty_doc_ids,
        }
        with atomic_write(folder / "meta.json") as handle:
            json.dump(meta, handle, ensure_ascii=False)

    def _load_cached(self, folder: Path) -> bool:
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("version") != _INDEX_VERSION:
                return False
            plain = Path(meta["plain"])
            if not plain.is_file():
                return False
            with open(folder / "ids.json", encoding="utf-8") as handle:
                id_list = json.load(handle)
            offsets = np.load(folder / "offsets.npy")
        except (OSError, ValueError, KeyError):
            return False
        if (
            len(id_list) != meta["n_docs"]
            or len(offsets) != len(id_list) + 1
            or offsets[-1] != plain.stat().st_size
        ):
            return False
        self._ids = {doc_id: i for i, doc_id in enumerate(id_list)}
        self._offsets = offsets
        self._plain = plain
        self.empty_doc_ids = list(meta.get("empty_doc_ids", []))
        self._report_empty()
        return True
