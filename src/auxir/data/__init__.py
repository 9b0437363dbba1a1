"""Records, loaders and training-sample builders."""

from __future__ import annotations

from auxir.data.dataset import Dataset, load_dataset
from auxir.data.errors import DataFormatError
from auxir.data.records import Doc, Qrel, Query, ScoredDoc
from auxir.data.trec import group_by_query, read_qrels, read_run, read_topics, write_run

__all__ = [
    "DataFormatError",
    "Dataset",
    "Doc",
    "Qrel",
    "Query",
    "ScoredDoc",
    "group_by_query",
    "load_dataset",
    "read_qrels",
    "read_run",
    "read_topics",
    "write_run",
]
