"""``auxir cv`` on a tiny collection without a training split, and ``auxir train``'s hint towards it."""

from __future__ import annotations

import shutil

import pytest

import auxir.cli
from auxir.cli import main
from auxir.data.dataset import load_dataset
from auxir.data.trec import read_run
from auxir.evaluation.folds import load_folds
from tests.training.test_experiment import tiny_overrides


@pytest.fixture(autouse=True)
def register_cv(monkeypatch):
    monkeypatch.setattr(auxir.cli, "COMMANDS", {**auxir.cli.COMMANDS, "cv": "auxir.cli.cv"})


@pytest.fixture
def no_train(tiny_beir, tmp_path):
    data = tmp_path / "no-train"
    shutil.copytree(tiny_beir, data)
    (data / "qrels" / "train.tsv").unlink()
    return data


def cv_args(tiny_bert, data, out, *extra):
    args = ["cv", "--recipe", "monobert", "--dataset", str(data), "--folds", "3", "--out", str(out)]
    # tiny_overrides' dataset and output_dir are replaced by --dataset and the folds' own folders
    for item in tiny_overrides(tiny_bert, data, out / "unused"):
        args += ["--set", item]
    return args + list(extra)


def test_cv_merges_folds_compares_and_resumes(tiny_bert, no_train, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(cv_args(tiny_bert, no_train, out)) == 0
    printed = capsys.readouterr().out
    judged = {q.query_id for q in load_dataset(str(no_train)).qrels("test")}
    folds = load_folds(out / "folds.json")
    assert len(folds) == 3 and sorted(q for f in folds for q in f.test) == sorted(judged)
    for name in ("first_stage", "reranked", "fused"):
        merged = read_run(out / f"{name}.trec")
        assert {s.query_id for s in merged} == judged, name
        # every judged query once: each (query, doc) pair once, ranks 1..n within a query
        assert len({(s.query_id, s.doc_id) for s in merged}) == len(merged), name
    for i, fold in enumerate(folds):
        assert {s.query_id for s in read_run(out / f"fold{i}" / "reranked.trec")} == set(fold.test)
    table = (out / "comparison.md").read_text(encoding="utf-8")
    for row in ("| BM25 (baseline) |", "| reranker |", "| reranker ⊕ BM25 |"):
        assert row in table
    assert table.strip() in printed and "skipped" not in printed

    stamps = [(out / f"fold{i}" / "metrics.json").stat().st_mtime_ns for i in range(3)]
    assert main(cv_args(tiny_bert, no_train, out)) == 0
    printed = capsys.readouterr().out
    assert printed.count("exists, skipped") == 3
    assert [(out / f"fold{i}" / "metrics.json").stat().st_mtime_ns for i in range(3)] == stamps
    assert (out / "comparison.md").read_text(encoding="utf-8") == table


def test_cv_refuses_other_folds_in_the_same_out(tiny_bert, no_train, tmp_path, capsys):
    out = tmp_path / "cv"
    out.mkdir()
    assert (
        main(
            [
                "folds",
                "--dataset",
                str(no_train),
                "--split",
                "test",
                "-k",
                "4",
                "--out",
                str(out / "folds.json"),
            ]
        )
        == 0
    )
    assert main(cv_args(tiny_bert, no_train, out)) == 2
    assert "found other folds; use another --out" in capsys.readouterr().err


def test_train_without_train_split_points_to_cv(tiny_bert, no_train, tmp_path, capsys):
    args = ["train", "--recipe", "monobert"]
    for item in tiny_overrides(tiny_bert, no_train, tmp_path / "train"):
        args += ["--set", item]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert f"dataset '{no_train}': expected a training split 'train', found no such split" in error
    assert "(its splits: test)" in error
    assert f"auxir cv --recipe monobert --dataset {no_train} --split test" in error
