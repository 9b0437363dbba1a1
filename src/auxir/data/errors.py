"""Errors raised at the data boundary: they name the file, the line, what was expected and what was found."""

from __future__ import annotations

import json
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


def describe_json_error(error: json.JSONDecodeError) -> str:
    """json's message and column, once: some messages already end in "at" ("Unterminated string starting at").

    >>> try:
    ...     json.loads('{"a": "b')
    ... except json.JSONDecodeError as error:
    ...     describe_json_error(error)
    'Unterminated string starting at column 7'
    """
    return f"{error.msg.removesuffix(' at')} at column {error.colno}"
