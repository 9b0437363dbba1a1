"""TREC-style text files: qrels, runs and topics.

Every reader goes through :func:`iter_lines`, so a bad byte or a bad row is reported with the file and the
line it sits on (:class:`~auxir.data.errors.DataFormatError`), never as a bare ``UnicodeDecodeError`` or
``IndexError`` from deep inside a parser. Files ending in ``.gz`` are read transparently (a damaged one is a
``DataFormatError`` too), and a UTF-8 byte-order mark at the start of a file is dropped, not read as data.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from auxir.data.errors import DataFormatError
from auxir.data.records import Qrel, Query, ScoredDoc
from auxir.io import atomic_write

__all__ = [
    "UTF8_BOM",
    "decode_line",
    "group_by_query",
    "iter_lines",
    "iter_raw_lines",
    "open_binary",
    "read_qrels",
    "read_run",
    "read_topics",
    "write_run",
]

# First-line column names that mark a header rather than a judgement (BEIR writes "query-id corpus-id score").
_QRELS_HEADER_FIRST = {"query-id", "query_id", "queryid", "qid", "topic", "query"}

# Written by some Windows tools at the start of UTF-8 files; it is not part of the first id.
UTF8_BOM = b"\xef\xbb\xbf"


def open_binary(path: str | Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing ``.gz``; a clear error if it does not exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def decode_line(raw: bytes, path: str | Path, line_no: int | None) -> str:
    """Decode one line as UTF-8, reporting the line and byte column on failure (the stdlib error has neither)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1].hex()
        raise DataFormatError(
            path, line_no, "UTF-8 text", f"invalid byte 0x{bad} at byte column {err.start + 1}"
        ) from None


def iter_raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` for every line, 1-based and undecoded (a leading BOM included).

    A ``.gz`` file that is truncated, damaged or not gzip at all raises :class:`DataFormatError` naming the
    line being read, instead of ``EOFError``/``BadGzipFile``/``zlib.error`` from inside the decompressor.
    """
    line_no = 0
    with open_binary(path) as handle:
        try:
            for line_no, raw in enumerate(handle, start=1):
                yield line_no, raw
        except EOFError:
            raise DataFormatError(
                path, line_no + 1, "a complete gzip file", "the compressed data ending early (truncated?)"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as error:
            if line_no == 0 and str(error).startswith("Not a gzipped file"):
                with open(path, "rb") as plain:
                    start = plain.read(2)
                raise DataFormatError(
                    path,
                    1,
                    "gzip-compressed data (the name ends in .gz)",
                    f"bytes that are not gzip ({start!r})",
                ) from None
            raise DataFormatError(path, line_no + 1, "valid gzip data", f"damaged data ({error})") from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for non-blank lines, 1-based, without the line ending or a leading BOM."""
    for line_no, raw in iter_raw_lines(path):
        if line_no == 1:
            raw = raw.removeprefix(UTF8_BOM)
        text = decode_line(raw, path, line_no).rstrip("\r\n")
        if text.strip():
            yield line_no, text


def _parse_int(value: str, path: str | Path, line_no: int, what: str) -> int:
    """Integers, also written as ``1.0`` (some tools write grades as floats); anything else is an error."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise DataFormatError(path, line_no, f"an integer {what}", repr(value))
    return int(number)


def _parse_float(value: str, path: str | Path, line_no: int, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(path, line_no, f"a number as {what}", repr(value)) from None
    if math.isnan(number):
        raise DataFormatError(path, line_no, f"a number as {what}", repr(value))
    return number


def read_qrels(path: str | Path) -> list[Qrel]:
    """Read relevance judgements in TREC (``qid iter docid rel``) or BEIR (``query-id corpus-id score``) layout.

    Columns are split on any whitespace. The layout is taken from the first judgement and every later line
    must match it, so a damaged line is caught rather than read with shifted columns. Grades stay graded ints
    (negative grades, used by some TREC tracks for "junk", are kept).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "q.txt")
    >>> _ = open(p, "w").write("301 0 FBIS3-10082 1\\n301 0 FBIS3-10169 0\\n")
    >>> read_qrels(p)
    [Qrel(query_id='301', doc_id='FBIS3-10082', relevance=1), Qrel(query_id='301', doc_id='FBIS3-10169', relevance=0)]
    """
    qrels: list[Qrel] = []
    n_columns: int | None = None
    for line_no, text in iter_lines(path):
        fields = text.split()
        if n_columns is None:
            if len(fields) == 3 and fields[0].lower() in _QRELS_HEADER_FIRST and not _is_number(fields[2]):
                continue  # BEIR header
            if len(fields) not in (3, 4):
                raise DataFormatError(
                    path,
                    line_no,
                    "4 columns 'qid iter docid rel' (TREC) or 3 columns 'query-id corpus-id score' (BEIR)",
                    f"{len(fields)} columns: {text!r}",
                )
            n_columns = len(fields)
        elif len(fields) != n_columns:
            raise DataFormatError(
                path,
                line_no,
                f"{n_columns} columns, as on the first judgement",
                f"{len(fields)} columns: {text!r}",
            )
        query_id, doc_id, grade = (
            (fields[0], fields[1], fields[2]) if n_columns == 3 else (fields[0], fields[2], fields[3])
        )
        qrels.append(Qrel(query_id, doc_id, _parse_int(grade, path, line_no, "relevance grade")))
    return qrels


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def read_run(path: str | Path) -> list[ScoredDoc]:
    """Read a TREC run (``qid Q0 docid rank score tag``), keeping the file's order.

    The rank column is checked to be an integer but not kept: scores carry the order, and evaluation tools
    (trec_eval, ir_measures) re-sort by score anyway. A (query, document) pair listed twice is an error:
    tools disagree on it (count it twice, or keep one of the scores silently), so no result would be trusted.
    """
    scored: list[ScoredDoc] = []
    first_line: dict[tuple[str, str], int] = {}
    for line_no, text in iter_lines(path):
        fields = text.split()
        if len(fields) != 6:
            raise DataFormatError(
                path, line_no, "6 columns 'qid Q0 docid rank score tag'", f"{len(fields)} columns: {text!r}"
            )
        seen = first_line.setdefault((fields[0], fields[2]), line_no)
        if seen != line_no:
            raise DataFormatError(
                path,
                line_no,
                "each (query, document) pair once",
                f"query {fields[0]!r} doc {fields[2]!r} already at line {seen}",
            )
        _parse_int(fields[3], path, line_no, "rank")
        scored.append(ScoredDoc(fields[0], fields[2], _parse_float(fields[4], path, line_no, "score")))
    return scored


def sort_ranking(items: list[ScoredDoc]) -> None:
    """trec_eval's order, in place: score descending, ties to the larger doc id. Writing runs in the
    order evaluation reads them keeps the rank column and the evaluated ranking the same."""
    items.sort(key=lambda s: s.doc_id, reverse=True)
    items.sort(key=lambda s: -s.score)  # stable: ties keep the doc-id order


def group_by_query(scored: Iterable[ScoredDoc]) -> dict[str, list[ScoredDoc]]:
    """Group by query (in order of first appearance); each list sorted by score descending, ties by doc id descending (as trec_eval)."""
    groups: dict[str, list[ScoredDoc]] = {}
    for item in scored:
        groups.setdefault(item.query_id, []).append(item)
    for items in groups.values():
        sort_ranking(items)
    return groups


def write_run(path: str | Path, scored: Iterable[ScoredDoc], tag: str = "auxir") -> None:
    """Write a TREC run atomically: grouped by query, score descending, ranks 1..n, ties broken by doc id descending (as trec_eval).

    Scores are written with ``repr`` so that reading the file back gives the same floats.
    """
    if not tag or any(ch.isspace() for ch in tag):
        raise ValueError(f"write_run: expected a run tag without whitespace, found {tag!r}")
    groups = group_by_query(scored)
    with atomic_write(path) as handle:
        for query_id, items in groups.items():
            for rank, item in enumerate(items, start=1):
                for name, value in (("query id", item.query_id), ("doc id", item.doc_id)):
                    if not value or any(ch.isspace() for ch in value):
                        raise ValueError(
                            f"write_run {path}: expected a {name} without whitespace, found {value!r}"
                        )
                handle.write(f"{query_id} Q0 {item.doc_id} {rank} {float(item.score)!r} {tag}\n")


_TAG = re.compile(r"<(/?)([A-Za-z]+)>")
_FIELD_ALIASES = {"description": "desc", "narrative": "narr", "number": "num"}
# Labels that TREC topic files put at the start of a field's text ("<desc> Description:").
_LABEL = re.compile(
    r"^\s*(Number|Topic|Description|Narrative|Summary|Concept\(s\)|Definition\(s\))\s*:\s*", re.I
)


def read_topics(path: str | Path, field: str = "title") -> dict[str, Query]:
    """Read TREC topics (``<top><num> Number: 301 <title> ... <desc> ...</top>``) or a ``qid<TAB>text`` TSV.

    ``field`` picks the query text (``title``, ``desc``/``description``, ``narr``/``narrative``); the other
    fields go into ``metadata``. The format is recognised from the first non-blank line.
    """
    lines = list(iter_lines(path))
    if lines and lines[0][1].lstrip().lower().startswith("<top"):
        return _read_trec_topics(path, lines, _FIELD_ALIASES.get(field, field))
    queries: dict[str, Query] = {}
    for line_no, text in lines:
        fields = text.split("\t")
        if len(fields) != 2:
            raise DataFormatError(
                path, line_no, "2 tab-separated columns 'qid<TAB>text'", f"{len(fields)} columns: {text!r}"
            )
        query_id, query_text = fields[0].strip(), fields[1].strip()
        if query_id in queries:
            raise DataFormatError(path, line_no, "unique query ids", f"{query_id!r} again")
        queries[query_id] = Query(query_id, query_text)
    return queries


def _read_trec_topics(path: str | Path, lines: list[tuple[int, str]], field: str) -> dict[str, Query]:
    """Classic SGML-ish topics: fields open with ``<tag>`` and run until the next tag (closing tags optional)."""
    queries: dict[str, Query] = {}
    fields: dict[str, list[str]] = {}
    current: str | None = None
    start_line = 0
    for line_no, text in lines:
        pos = 0
        for match in _TAG.finditer(text):
            if current is not None:
                fields[current].append(text[pos : match.start()])
            closing, tag = match.group(1) == "/", match.group(2).lower()
            tag = _FIELD_ALIASES.get(tag, tag)
            pos = match.end()
            if tag == "top":
                if closing:
                    _add_topic(queries, fields, field, path, start_line)
                    fields = {}
                else:
                    start_line, fields = line_no, {}
                current = None
            else:
                current = None if closing else tag
                if current is not None:
                    fields.setdefault(current, [])
        if current is not None:
            fields[current].append(text[pos:])
    if fields:
        raise DataFormatError(path, start_line, "a topic closed by </top>", "end of file")
    return queries


def _add_topic(
    queries: dict[str, Query], raw: dict[str, list[str]], field: str, path: str | Path, line: int
) -> None:
    values = {
        tag: _LABEL.sub("", " ".join(part.strip() for part in parts if part.strip())).strip()
        for tag, parts in raw.items()
    }
    query_id = values.pop("num", "")
    if not query_id:
        raise DataFormatError(
            path, line, "a <num> field in every topic", f"a topic without one (fields: {sorted(values)})"
        )
    if field not in values:
        raise DataFormatError(
            path, line, f"a <{field}> field in topic {query_id}", f"fields {sorted(values)}"
        )
    if query_id in queries:
        raise DataFormatError(path, line, "unique topic numbers", f"{query_id!r} again")
    text = values.pop(field)
    queries[query_id] = Query(query_id, text, values)
