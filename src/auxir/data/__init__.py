"""Records, loaders and training-sample builders."""

from __future__ import annotations

from auxir.data.errors import DataFormatError
from auxir.data.records import Doc, Qrel, Query, ScoredDoc

__all__ = ["DataFormatError", "Doc", "Qrel", "Query", "ScoredDoc"]
