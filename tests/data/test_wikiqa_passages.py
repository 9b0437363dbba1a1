"""bench/wikiqa_passages.py: WikiQA questions with their answer sentence and page, for GDMTL+."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from auxir.data.dataset import load_dataset
from tests.bench_module import bench_module


def converter():
    return bench_module("wikiqa_passages")


def write_wikiqa(root: Path) -> None:
    """Two pages; Q1 is answered by its third sentence, Q2 by none (left out)."""
    docs = {
        "D1-0": "the eiffel tower is in paris",
        "D1-1": "it was built for a fair",
        "D1-2": "the tower is 330 metres tall",
        "D2-0": "rivers flow to the sea",
        "D2-1": "the nile is long",
    }
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as f:
        for doc_id, text in docs.items():
            f.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        f.write(
            json.dumps({"_id": "Q1", "text": "how tall is the eiffel tower", "metadata": {"split": "test"}})
            + "\n"
        )
        f.write(
            json.dumps({"_id": "Q2", "text": "which river is longest", "metadata": {"split": "test"}}) + "\n"
        )
    rows = ["D1-2\t1", "D1-0\t0", "D1-1\t0"]
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"Q1\t{r}\n" for r in rows) + "Q2\tD2-0\t0\nQ2\tD2-1\t0\n"
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n")


def test_questions_get_their_answer_and_page_and_a_bm25_pool(tmp_path):
    write_wikiqa(tmp_path / "src")
    counts = converter().build(tmp_path / "src", tmp_path / "out")
    assert counts == {"train": 0, "test": 1, "documents": 3}
    ds = load_dataset(str(tmp_path / "out"))
    assert sorted(ds.queries) == ["Q1"]  # Q2 has no correct sentence
    meta = ds.queries["Q1"].metadata
    assert meta["answer"] == "the tower is 330 metres tall"
    assert meta["page"] == "the eiffel tower is in paris it was built for a fair the tower is 330 metres tall"
    pool = ds.run("pool")
    assert {s.doc_id for s in pool} == {"D1-0", "D1-1", "D1-2"}
    assert pool[0].doc_id in ("D1-0", "D1-2") and pool[-1].doc_id == "D1-1"  # no shared term: last, 0
    assert pool[-1].score == 0.0
    with gzip.open(tmp_path / "out" / "corpus.jsonl.gz", "rt") as f:
        assert len(f.readlines()) == 3


def test_a_sentence_id_without_a_position_is_refused():
    with pytest.raises(ValueError, match=r"WikiQA sentence id 'D7': expected <page>-<position>"):
        converter().page_position("D7")


def test_real_wikiqa_keeps_the_answerable_questions(shared_data, tmp_path):
    if not (shared_data / "wikiqa").is_dir():
        pytest.skip(f"real data not available: {shared_data / 'wikiqa'} does not exist")
    counts = converter().build(shared_data / "wikiqa", tmp_path / "out")
    assert counts["train"] == 873 and counts["test"] == 243  # WikiQA's answerable questions
