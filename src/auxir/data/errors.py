"""Errors raised at the data boundary: they name the file, the line, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A record in an input file is malformed.

    >>> str(DataFormatError("q.tsv", 3, "4 columns", "2 columns"))
    'q.tsv, line 3: expected 4 columns, found 2 columns'
    """

    def __init__(self, path: str | Path, line: int | None, expected: str, found: str):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: expected {expected}, found {found}")
