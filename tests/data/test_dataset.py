from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from auxir.data import DataFormatError, Qrel, Query, ScoredDoc
from auxir.data.dataset import Dataset, load_dataset


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "runs").mkdir()
    docs = [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(1, 5)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    queries = [
        {"_id": "q1", "text": "first"},
        {"_id": "q2", "text": "second", "metadata": {"split": "test"}},
        {"_id": "q3", "text": "third"},
    ]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td1\t2\nq1\td2\t1\nq2\td3\t0\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td4\t1\n")
    (root / "runs" / "bm25.test.trec").write_text("q1 Q0 d2 1 3.0 bm25\nq1 Q0 d1 2 2.0 bm25\n")
    return root


def test_load_beir_directory(beir_dir: Path) -> None:
    ds = load_dataset(beir_dir)
    assert isinstance(ds, Dataset) and ds.name == "tiny"
    assert ds.splits == ["test", "train"]
    assert len(ds.docs) == 4 and ds.docs["d3"].title == "T3"
    assert ds.queries["q2"] == Query("q2", "second", {"split": "test"})
    assert ds.qrels("test") == [Qrel("q2", "d1", 2), Qrel("q1", "d2", 1), Qrel("q2", "d3", 0)]
    assert list(ds.queries_for("test")) == ["q2", "q1"]
    assert list(ds.queries_for("train")) == ["q3"]
    assert ds.runs == {"bm25.test": beir_dir / "runs" / "bm25.test.trec"}
    assert ds.run("bm25.test") == [ScoredDoc("q1", "d2", 3.0), ScoredDoc("q1", "d1", 2.0)]


def test_load_dataset_accepts_a_string_path(beir_dir: Path) -> None:
    assert load_dataset(str(beir_dir)).splits == ["test", "train"]


def test_unknown_split_lists_available_splits(beir_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"dataset 'tiny' has no split 'dev'; available splits: test, train"):
        load_dataset(beir_dir).qrels("dev")


def test_unknown_run_lists_available_runs(beir_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"no run 'dense'; available runs: bm25.test"):
        load_dataset(beir_dir).run("dense")


def test_qrels_with_unknown_ids_warn_with_counts(beir_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (beir_dir / "qrels" / "test.tsv").write_text("q1\td1\t1\nq9\td1\t1\nq1\tmissing\t1\nq1\tgone\t0\n")
    with caplog.at_level(logging.WARNING, logger="auxir.data.dataset"):
        qrels = load_dataset(beir_dir).qrels("test")
    assert len(qrels) == 4  # kept: evaluation must see every judgement
    assert "1 lines name a query id with no query (first: 'q9')" in caplog.text
    assert "2 lines name a doc id with no document (first: 'missing')" in caplog.text


def test_qrels_with_unknown_ids_raise_when_strict(beir_dir: Path) -> None:
    (beir_dir / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\tmissing\t1\n")
    with pytest.raises(DataFormatError, match=r"1 lines name a doc id with no document \(first: 'missing'\)"):
        load_dataset(beir_dir, strict=True).qrels("test")


def test_run_with_unknown_ids_warns(beir_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (beir_dir / "runs" / "bm25.test.trec").write_text(
        "q1 Q0 d2 1 3.0 bm25\nq1 Q0 dx 2 2.0 bm25\nqx Q0 d1 1 1.0 bm25\n"
    )
    with caplog.at_level(logging.WARNING, logger="auxir.data.dataset"):
        assert len(load_dataset(beir_dir).run("bm25.test")) == 3
    assert "1 lines name a query id with no query (first: 'qx')" in caplog.text
    assert "1 lines name a doc id with no document (first: 'dx')" in caplog.text


def test_missing_corpus_file(beir_dir: Path) -> None:
    (beir_dir / "corpus.jsonl").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"no corpus file; expected one of corpus.jsonl, corpus.jsonl.gz"
    ):
        load_dataset(beir_dir)


def test_missing_queries_file(beir_dir: Path) -> None:
    (beir_dir / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="expected queries.jsonl"):
        load_dataset(beir_dir)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such dataset directory"):
        load_dataset(tmp_path / "nope")


def test_a_file_is_not_a_dataset(beir_dir: Path) -> None:
    with pytest.raises(ValueError, match="expected a BEIR directory"):
        load_dataset(beir_dir / "corpus.jsonl")


def test_queries_missing_text_field(beir_dir: Path) -> None:
    (beir_dir / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q2", "query": "b"}\n')
    with pytest.raises(
        DataFormatError, match=r"queries.jsonl, line 2: expected fields \"_id\" and \"text\", found no 'text'"
    ):
        _ = load_dataset(beir_dir).queries


def test_queries_malformed_json(beir_dir: Path) -> None:
    (beir_dir / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q2", \n')
    with pytest.raises(DataFormatError, match=r"queries.jsonl, line 2: expected a JSON object"):
        _ = load_dataset(beir_dir).queries


def test_queries_duplicate_id(beir_dir: Path) -> None:
    (beir_dir / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n')
    with pytest.raises(DataFormatError, match=r"line 2: expected unique query ids, found 'q1' again"):
        _ = load_dataset(beir_dir).queries


def test_queries_empty_text_counted(beir_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (beir_dir / "queries.jsonl").write_text('{"_id": "q1", "text": ""}\n{"_id": "q2", "text": "b"}\n')
    with caplog.at_level(logging.WARNING, logger="auxir.data.beir"):
        assert len(load_dataset(beir_dir).queries) == 2
    assert "1 queries have empty text; kept (first ids: q1)" in caplog.text


def test_unknown_irds_id() -> None:
    with pytest.raises(ValueError, match=r"ir_datasets has no dataset 'auxir-test/does-not-exist'"):
        load_dataset("irds:auxir-test/does-not-exist")
