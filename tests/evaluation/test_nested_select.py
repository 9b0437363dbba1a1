"""bench/nested_select.py: each fold keeps the setting its own validation queries prefer."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.bench_module import bench_module


def selector():
    return bench_module("nested_select")


def job(variant: str, fold: int, valid: float, test: float, status: str = "done") -> dict:
    return {
        "collection": "c",
        "variant": variant,
        "seed": 0,
        "fold": fold,
        "status": status,
        "overrides": [variant],
        "metrics": {"best_valid": valid},
        "per_query": {"reranked": {"nDCG@10": {f"q{fold}": test}}},
    }


def test_each_fold_takes_its_best_validation_setting_and_ties_go_first():
    jobs = [job("a", 0, 0.5, 0.1), job("b", 0, 0.6, 0.9), job("a", 1, 0.7, 0.2), job("b", 1, 0.7, 0.8)]
    chosen, notes = selector().choose(jobs, "tuned", ["a", "b"])
    assert [(j["fold"], j["chosen"], j["variant"]) for j in chosen] == [(0, "b", "tuned"), (1, "a", "tuned")]
    assert chosen[0]["per_query"]["reranked"]["nDCG@10"] == {"q0": 0.9}  # the chosen run's test results
    assert chosen[1]["chosen_from"] == {"a": 0.7, "b": 0.7}
    assert "tuned ('c', 0, 1): a (valid a 0.7000, b 0.7000)" in notes


def test_a_fold_missing_a_setting_is_left_out_and_said(tmp_path):
    module = selector()
    chosen, notes = module.choose([job("a", 0, 0.5, 0.1)], "tuned", ["a", "b"])
    assert chosen == [] and notes == ["tuned ('c', 0, 0): left out, no finished run of b"]
    with pytest.raises(ValueError, match=r"two runs of a for \('c', 0, 0\)"):
        module.choose([job("a", 0, 0.5, 0.1), job("a", 0, 0.4, 0.1)], "tuned", ["a"])


def test_the_output_reads_like_a_results_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(
            {
                "suite": "qbd",
                "metrics": ["nDCG@10"],
                "shuffled": {},
                "jobs": [
                    job("a", 0, 0.5, 0.1),
                    job("b", 0, 0.6, 0.9),
                    job("b", 1, 0.1, 0.1, status="failed"),
                ],
            },
            f,
        )
    out = tmp_path / "nested.json.gz"
    monkeypatch.setattr("sys.argv", ["x", "--results", str(path), "--choose", "t=a,b", "--out", str(out)])
    selector().main()
    data = json.loads(gzip.open(out, "rt").read())
    assert data["suite"] == "qbd" and [j["chosen"] for j in data["jobs"]] == ["b"]
