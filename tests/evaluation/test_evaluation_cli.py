"""``auxir evaluate | compare | folds`` through ``auxir.cli.main`` on temporary files."""

from __future__ import annotations

import csv
import json

import pytest

import auxir.cli


@pytest.fixture
def files(trec_files):
    # a second run: q2's d5 (grade 0) drops below d1 and d6, so q2's RR@10 becomes 1
    run = (trec_files / "run.trec").read_text()
    (trec_files / "other.trec").write_text(run.replace("q2 Q0 d5 1 3.0", "q2 Q0 d5 1 0.5"))
    return trec_files


def test_evaluate(files, capsys):
    per_query = files / "pq.csv"
    code = auxir.cli.main(
        [
            "evaluate",
            "--run",
            str(files / "run.trec"),
            "--qrels",
            str(files / "qrels.txt"),
            "--metrics",
            "RR@10",
            "P@5",
            "--rel",
            "2",
            "--per-query",
            str(per_query),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "RR(rel=2)@10  0.4167" in out and "P(rel=2)@5    0.3000" in out
    assert [row[0] for row in csv.reader(per_query.open())] == ["query_id", "q1", "q2"]


def test_evaluate_bad_metric_exits_2(files, capsys):
    code = auxir.cli.main(
        [
            "evaluate",
            "--run",
            str(files / "run.trec"),
            "--qrels",
            str(files / "qrels.txt"),
            "--metrics",
            "nDCG@ten",
        ]
    )
    assert code == 2 and "invalid metric 'nDCG@ten'" in capsys.readouterr().err


def test_compare(files, capsys):
    markdown, per_query = files / "cmp.md", files / "cmp.csv"
    code = auxir.cli.main(
        [
            "compare",
            "--baseline",
            str(files / "run.trec"),
            "--runs",
            f"rev={files / 'other.trec'}",
            "--qrels",
            str(files / "qrels.txt"),
            "--metrics",
            "RR@10",
            "--markdown",
            str(markdown),
            "--per-query",
            str(per_query),
        ]
    )
    assert code == 0
    assert "| run (baseline) | 0.5000 |" in capsys.readouterr().out
    assert "| rev | 0.7500 (p=" in markdown.read_text()
    assert next(csv.reader(per_query.open())) == ["metric", "query_id", "run", "rev"]


def test_folds(files, capsys):
    out = files / "folds.json"
    code = auxir.cli.main(
        ["folds", "--qrels", str(files / "qrels.txt"), "-k", "3", "--seed", "0", "--out", str(out)]
    )
    assert code == 0
    document = json.loads(out.read_text())
    assert document["k"] == 3 and document["metadata"]["seed"] == 0
    assert sorted(q for fold in document["folds"] for q in fold["test"]) == ["q1", "q2", "q3"]


def test_evaluate_prints_coverage(files, capsys):
    code = auxir.cli.main(
        [
            "evaluate",
            "--run",
            str(files / "run.trec"),
            "--qrels",
            str(files / "qrels.txt"),
            "--metrics",
            "RR@10",
        ]
    )
    assert code == 0
    assert "run: 3 queries, 2 judged (67%), Judged@10 0.9000" in capsys.readouterr().out


def test_compare_prints_coverage_and_strict_queries_refuses(files, capsys):
    # "short" lacks q2: its mean would be over q1 alone, beside the baseline's over q1 and q2.
    short = "".join(line + "\n" for line in (files / "run.trec").read_text().splitlines() if line[:2] != "q2")
    (files / "short.trec").write_text(short)
    args = ["compare", "--baseline", str(files / "run.trec"), "--runs", str(files / "short.trec"),
            "--qrels", str(files / "qrels.txt"), "--metrics", "RR@10"]  # fmt: skip
    assert auxir.cli.main(args) == 0
    out = capsys.readouterr().out
    assert "| run | 2 | 2/3 | 0.9000 |" in out and "| short | 1 | 1/2 | 0.8000 |" in out
    assert "**Warning:** runs evaluated on different queries: baseline 'run' on 2, 'short' on 1" in out
    assert auxir.cli.main([*args, "--strict-queries"]) == 2
    assert "expected every run evaluated on the same queries" in capsys.readouterr().err
