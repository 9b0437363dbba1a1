"""The README's main job on a tiny collection, including one without a training split."""

from __future__ import annotations

import shutil

from auxir.cli import main


def test_demo_runs_on_a_collection_without_train_split(tiny_bert, tiny_beir, tmp_path, capsys):
    data = tmp_path / "no-train"
    shutil.copytree(tiny_beir, data)
    (data / "qrels" / "train.tsv").unlink()
    code = main(["demo", "--data", str(data), "--out", str(tmp_path / "out"), "--model", str(tiny_bert)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "has no train split: 5-fold cross-validation over 'test'" in printed
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| BM25 (baseline) |" in table and "| reranker+MQP |" in table
    assert (tmp_path / "out" / "folds.json").exists()
