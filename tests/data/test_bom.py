"""A UTF-8 byte-order mark at the start of a file is not data: every reader gives the same records with it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auxir.data.beir import read_queries_jsonl
from auxir.data.docstore import JsonlDocStore
from auxir.data.trec import read_qrels, read_run, read_topics
from auxir.evaluation.folds import Fold, load_folds, save_folds

BOM = b"\xef\xbb\xbf"

CORPUS = "".join(
    json.dumps(r) + "\n"
    for r in [{"_id": "d1", "title": "T", "text": "alpha"}, {"_id": "d2", "text": "beta"}]
)


def read_corpus(path: Path) -> list[Any]:
    """Iteration, then lookup through the offset index (the first document's offset skips the mark)."""
    store = JsonlDocStore(path, cache=path.parent / "cache")
    return [list(store), store.ids(), store["d1"], store["d2"]]


def folds_text() -> str:
    return json.dumps(
        {
            "format": "auxir.folds/1",
            "k": 1,
            "metadata": {},
            "folds": [{"train": ["q1"], "valid": [], "test": []}],
        }
    )


READERS: dict[str, tuple[str, str, Callable[[Path], Any]]] = {
    "trec-run": ("run.trec", "q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 1.5 tag\n", read_run),
    "trec-qrels": ("qrels.txt", "301 0 D1 1\n301 0 D2 0\n", read_qrels),
    "beir-qrels": ("test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n", read_qrels),
    "beir-qrels-no-header": ("test.tsv", "q1\td1\t1\n", read_qrels),
    "topics-tsv": ("topics.tsv", "q1\tcat on a mat\nq2\tdog\n", read_topics),
    "topics-trec": ("topics.txt", "<top>\n<num> Number: 301\n<title> cats\n</top>\n", read_topics),
    "beir-queries": (
        "queries.jsonl",
        '{"_id": "q1", "text": "cat"}\n{"_id": "q2", "text": "dog"}\n',
        read_queries_jsonl,
    ),
    "beir-corpus": ("corpus.jsonl", CORPUS, read_corpus),
    "beir-corpus-gz": ("corpus.jsonl.gz", CORPUS, read_corpus),
    "folds": ("folds.json", folds_text(), load_folds),
}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_bom_gives_the_same_records(kind: str, tmp_path: Path) -> None:
    name, text, read = READERS[kind]
    results = []
    for sub, prefix in (("plain", b""), ("bom", BOM)):
        (tmp_path / sub).mkdir()
        data = prefix + text.encode("utf-8")
        path = tmp_path / sub / name
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        results.append(read(path))
    assert results[1] == results[0]
    assert results[0]  # something was read


def test_a_bom_before_a_beir_qrels_header_is_not_a_judgement(tmp_path: Path) -> None:
    """Was: "expected an integer relevance grade, found 'score'" (the header was not recognised)."""
    path = tmp_path / "test.tsv"
    path.write_bytes(BOM + b"query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    [qrel] = read_qrels(path)
    assert (qrel.query_id, qrel.doc_id, qrel.relevance) == ("q1", "d1", 2)


def test_save_folds_round_trip_is_unaffected(tmp_path: Path) -> None:
    folds = [Fold(["a"], ["b"], ["c"])]
    save_folds(tmp_path / "f.json", folds)
    assert load_folds(tmp_path / "f.json") == folds
