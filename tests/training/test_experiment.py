"""End to end on a tiny collection: recipe → BM25 → training → rerank → evaluation, and the CLI."""

from __future__ import annotations

import json

import pytest

from auxir.cli import main
from auxir.data.trec import read_run
from auxir.evaluation.metrics import evaluate
from auxir.recipe import load_recipe


def tiny_overrides(tiny_bert, tiny_beir, out, *extra):
    return [
        f"model={tiny_bert}",
        f"data.dataset={tiny_beir}",
        f"training.output_dir={out}",
        "training.max_steps=4",
        "training.batch_size=4",
        "training.progress=false",
        "architecture.max_length=48",
        "architecture.max_query_length=8",
        "data.rerank_top_k=5",
        "data.first_stage_k=20",
        *extra,
    ]


def test_experiment_writes_runs_and_metrics(tiny_bert, tiny_beir, tmp_path):
    from auxir.data.dataset import load_dataset
    from auxir.experiment import run_experiment

    recipe = load_recipe(
        "sjtf-mqp", tiny_overrides(tiny_bert, tiny_beir, tmp_path, "data.valid_fraction=0.25")
    )
    result = run_experiment(recipe)
    qrels = load_dataset(str(tiny_beir)).qrels("test")
    reranked = read_run(tmp_path / "reranked.trec")
    assert {s.query_id for s in reranked} == {q.query_id for q in qrels}
    bm25_docs = {(s.query_id, s.doc_id) for s in read_run(tmp_path / "first_stage.trec")}
    assert {(s.query_id, s.doc_id) for s in reranked} <= bm25_docs  # the tail below top-k is kept
    assert max(sum(1 for s in reranked if s.query_id == q) for q in {s.query_id for s in reranked}) > 5
    assert result.reranked == pytest.approx(evaluate(reranked, qrels, recipe.evaluation.metrics).aggregate)
    bm25 = [s for s in read_run(tmp_path / "first_stage.trec") if s.query_id in {q.query_id for q in qrels}]
    assert result.first_stage == pytest.approx(evaluate(bm25, qrels, recipe.evaluation.metrics).aggregate)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["train_steps"] == 4 and summary["best_step"] is not None
    assert (tmp_path / "best" / "auxir_heads.safetensors").exists()
    # fusion: the weight was chosen on validation; the fused run is what the summary reports
    fused = read_run(tmp_path / "fused.trec")
    assert summary["fused"] == pytest.approx(evaluate(fused, qrels, recipe.evaluation.metrics).aggregate)
    assert 0.0 <= summary["fusion"]["weight"] <= 1.0 and summary["fusion"]["metric"] == "nDCG@10"
    for plot in ("training.png", "scores.png", "vs-first-stage.png"):  # written beside the results
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


def test_cli_train_then_rerank_reproduces_the_run(tiny_bert, tiny_beir, tmp_path, capsys):
    out = tmp_path / "train"
    args = ["train", "--recipe", "monobert"]
    for item in tiny_overrides(tiny_bert, tiny_beir, out, "data.valid_fraction=0"):
        args += ["--set", item]
    assert main(args) == 0
    assert "| monobert |" in capsys.readouterr().out
    assert (
        main(
            [
                "rerank",
                "--model",
                str(out / "model"),
                "--run",
                str(out / "first_stage.trec"),
                "--dataset",
                str(tiny_beir),
                "--top-k",
                "5",
                "--out",
                str(tmp_path / "again.trec"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    again = {(s.query_id, s.doc_id): s.score for s in read_run(tmp_path / "again.trec")}
    trained = {(s.query_id, s.doc_id): s.score for s in read_run(out / "reranked.trec")}
    assert trained.keys() <= again.keys()
    assert all(again[k] == pytest.approx(v, abs=1e-6) for k, v in trained.items())


def test_unknown_recipe_field_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['epoch'\]; valid fields: .*'epochs'"):
        load_recipe("monobert", ["training.epoch=2"])


def test_unknown_objective_in_a_recipe_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown objective 'mqpp'; valid objectives: .*mqp"):
        load_recipe("monobert", ["objectives=[{name: mqpp}]"])


def test_unknown_recipe_name_lists_known_recipes(capsys):
    assert main(["train", "--recipe", "no-such-recipe", "--print-recipe"]) == 2
    err = capsys.readouterr().err
    assert "no recipe 'no-such-recipe'; known recipes: " in err
    assert "monobert, " in err and "sjtf-mqp, sjtf-mqp-all" in err


def test_wrong_type_in_override_is_an_error():
    with pytest.raises(ValueError, match="training.batch_size: expected int"):
        load_recipe("monobert", ["training.batch_size=eight"])


def test_rerank_cli_rejects_queries_missing_from_the_dataset(tiny_bert, tiny_beir, tmp_path, capsys):
    run = tmp_path / "run.trec"
    run.write_text("nope Q0 cat-d0 1 1.0 x\n")
    code = main(
        [
            "rerank",
            "--model",
            str(tiny_bert),
            "--run",
            str(run),
            "--dataset",
            str(tiny_beir),
            "--out",
            str(tmp_path / "o.trec"),
        ]
    )
    assert code == 2
    assert "1 query ids not in" in capsys.readouterr().err
