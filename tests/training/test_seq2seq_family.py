"""The seq2seq family (GDMTL_S / GDMTL_C): its recipes, its refusals, and training end to end on the tiny
collection with BERT2BERT and with BART; then ``auxir rerank`` and ``auxir generate-queries`` on the model."""

from __future__ import annotations

import json
import math

import pytest

from auxir.cli import main
from auxir.data.trec import read_run
from auxir.families import get_family
from auxir.models.seq2seq import Seq2SeqRanker, Seq2SeqRankerConfig
from auxir.recipe import load_recipe
from tests.models.test_seq2seq import tiny_bart  # noqa: F401  (a fixture)

from .test_experiment import tiny_overrides

BASELINE = ["objectives=[{name: listwise_softmax}]", "weighting.strategy=fixed"]  # BART_S / BART_C


@pytest.mark.parametrize(("name", "layout"), [("gdmtl-s", "separate"), ("gdmtl-c", "concatenated")])
def test_recipes_load_and_pass_the_familys_checks(name, layout):
    family = get_family("seq2seq")
    recipe = load_recipe(name)
    assert recipe.family == "seq2seq" and isinstance(recipe.architecture, Seq2SeqRankerConfig)
    assert recipe.architecture.layout == layout and recipe.architecture.task_prefix == "rank:"
    assert [o.name for o in recipe.objectives] == ["listwise_softmax", "query_generation"]
    assert recipe.objectives[1].params == {"prefix": True, "reduction": "mean"}
    assert recipe.weighting.strategy == "uncertainty"
    family.check(recipe)
    baseline = load_recipe(name, BASELINE)
    assert [o.name for o in baseline.objectives] == ["listwise_softmax"]
    family.check(baseline)


def test_family_refuses_objectives_that_need_an_encoder_only_model():
    recipe = load_recipe("gdmtl-s", ["objectives.1.name=mqp", "objectives.1.params={}"])
    with pytest.raises(
        ValueError, match=r"family seq2seq: objective\(s\) \['mqp'\] need an encoder-only model"
    ):
        get_family("seq2seq").check(recipe)
    with pytest.raises(ValueError, match=r"architecture.layout: 'stacked' is not one of"):
        load_recipe("gdmtl-s", ["architecture.layout=stacked"])


def test_gdmtl_s_trains_end_to_end_and_auxir_rerank_reproduces_its_run(tiny_bert, tiny_beir, tmp_path):
    from auxir.experiment import run_experiment

    out = tmp_path / "run"
    overrides = tiny_overrides(tiny_bert, tiny_beir, out, "data.valid_fraction=0.25", "training.log_every=1")
    result = run_experiment(load_recipe("gdmtl-s", overrides))
    assert result.train.steps == 4
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["family"] == "seq2seq" and summary["train_steps"] == 4 and summary["best_step"] is not None
    assert 0.0 <= summary["reranked"]["nDCG@10"] <= 1.0
    steps = [r for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
    for key in ("listwise_softmax", "query_generation", "sigma2/query_generation"):
        assert all(math.isfinite(r[key]) for r in steps), key
    assert json.loads((out / "best" / "auxir.json").read_text())["format"] == "auxir-seq2seq-ranker"
    assert Seq2SeqRanker.from_pretrained(out / "best").config.layout == "separate"

    args = ["--run", str(out / "first_stage.trec"), "--dataset", str(tiny_beir), "--device", "cpu"]
    assert (
        main(
            [
                "rerank",
                "--model",
                str(out / "best"),
                "--top-k",
                "5",
                "--out",
                str(tmp_path / "again.trec"),
                *args,
            ]
        )
        == 0
    )
    again = {(s.query_id, s.doc_id): s.score for s in read_run(tmp_path / "again.trec")}
    trained = {(s.query_id, s.doc_id): s.score for s in read_run(out / "reranked.trec")}
    assert trained.keys() <= again.keys()
    assert all(again[k] == pytest.approx(v, abs=1e-5) for k, v in trained.items())

    expansions = tmp_path / "expansions.jsonl"
    generate = ["generate-queries", "--model", str(out / "best"), "--dataset", str(tiny_beir)]
    assert (
        main(
            [
                *generate,
                "--out",
                str(expansions),
                "--method",
                "greedy",
                "--limit",
                "2",
                "--prefix",
                "--max-length",
                "4",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in expansions.read_text().splitlines()]
    assert len(lines) == 2 and all(len(line["queries"]) == 1 for line in lines)


def test_gdmtl_c_trains_a_bart_end_to_end(tiny_bart, tiny_beir, tmp_path):  # noqa: F811
    from auxir.experiment import run_experiment

    recipe = load_recipe("gdmtl-c", tiny_overrides(tiny_bart, tiny_beir, tmp_path, "data.valid_fraction=0"))
    result = run_experiment(recipe)
    assert result.train.steps == 4 and (tmp_path / "reranked.trec").exists()
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["family"] == "seq2seq" and 0.0 <= summary["reranked"]["nDCG@10"] <= 1.0
    saved = Seq2SeqRanker.from_pretrained(result.train.model_dir)
    assert (
        saved.config.layout == "concatenated" and type(saved.model).__name__ == "BartForConditionalGeneration"
    )
