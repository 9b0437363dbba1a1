"""Records in ir_datasets vocabulary: small named types, one per kind of row."""

from __future__ import annotations

from typing import Any, NamedTuple


class Doc(NamedTuple):
    doc_id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = {}

    def full_text(self, sep: str = " ") -> str:
        """Title and text joined, the usual input of a first stage or an encoder."""
        if not self.title:
            return self.text
        return f"{self.title}{sep}{self.text}" if self.text else self.title


class Query(NamedTuple):
    query_id: str
    text: str
    metadata: dict[str, Any] = {}


class Qrel(NamedTuple):
    query_id: str
    doc_id: str
    relevance: int


class ScoredDoc(NamedTuple):
    query_id: str
    doc_id: str
    score: float
