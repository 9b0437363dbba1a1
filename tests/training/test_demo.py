"""The README's main job on a tiny collection, including one without a training split."""

from __future__ import annotations

import shutil

import pytest

from auxir.cli import main


def test_demo_runs_on_a_collection_without_train_split(tiny_bert, tiny_beir, tmp_path, capsys):
    data = tmp_path / "no-train"
    shutil.copytree(tiny_beir, data)
    (data / "qrels" / "train.tsv").unlink()
    code = main(["demo", "--data", str(data), "--out", str(tmp_path / "out"), "--model", str(tiny_bert)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "has no train split: 5-fold cross-validation over 'test'" in printed
    from auxir.cli.demo import cpu_has_native_bf16

    assert f"({'bfloat16' if cpu_has_native_bf16() else 'float32'})." in printed  # --bf16 auto, on a CPU
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| BM25 (baseline) |" in table and "| reranker+MQP |" in table
    assert (tmp_path / "out" / "folds.json").exists()


class _Stop(Exception):
    """Raised by the stand-in for run_experiment once it has seen the first recipe."""


@pytest.mark.parametrize(
    ("flag", "native", "expected"),
    [("auto", True, "true"), ("auto", False, "auto"), ("on", False, "true"), ("off", True, "false")],
)
def test_demo_bf16_follows_the_flag_and_the_cpu(flag, native, expected, tiny_beir, tmp_path, monkeypatch):
    # auto: bfloat16 on a CPU with native bf16 instructions (else "auto", which is float32 on a CPU and
    # bf16 on a GPU); on / off force it. The recipe's training.bf16 carries the choice to training and ranking.
    import auxir.cli.demo
    import auxir.experiment

    seen = []

    def first_recipe_only(recipe):
        seen.append(recipe.training.bf16)
        raise _Stop

    monkeypatch.setattr(auxir.cli.demo, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(auxir.experiment, "run_experiment", first_recipe_only)
    with pytest.raises(_Stop):
        main(["demo", "--data", str(tiny_beir), "--out", str(tmp_path / "out"), "--bf16", flag])
    assert seen == [expected]


def test_cpu_bf16_detection_answers_a_bool():
    from auxir.cli.demo import cpu_has_native_bf16

    assert isinstance(cpu_has_native_bf16(), bool)


def test_ranking_autocasts_as_training_bf16_says(tiny_bert, tiny_beir, tmp_path, monkeypatch):
    # On a CPU, training.bf16=true puts validation and test reranking under bf16 autocast too.
    import auxir.families.cross_encoder as family
    from auxir.experiment import run_experiment
    from auxir.recipe import load_recipe

    calls = []
    real_rerank = family.rerank

    def recording_rerank(*args, **kwargs):
        calls.append(kwargs.get("bf16"))
        return real_rerank(*args, **kwargs)

    monkeypatch.setattr(family, "rerank", recording_rerank)
    overrides = [f"data.dataset={tiny_beir}", f"model={tiny_bert}", f"training.output_dir={tmp_path / 'run'}"]
    small = ["training.max_steps=2", "samples.num_negatives=1", "training.batch_size=2", "training.bf16=true"]
    run_experiment(load_recipe("monobert", overrides + small))
    assert calls and all(bf16 is True for bf16 in calls)


def test_demo_precision_bench_reads_each_recipes_metrics(tmp_path):
    import json

    from tests.bench_module import bench_module

    for recipe, ndcg, fused in (("monobert", 0.75, 0.79), ("sjtf-mqp", 0.73, None)):
        metrics = {"first_stage": {"nDCG@10": 0.72}, "reranked": {"nDCG@10": ndcg}}
        if fused is not None:
            metrics |= {"fused": {"nDCG@10": fused}, "fusion": {"weight": 0.95}}
        (tmp_path / recipe).mkdir()
        (tmp_path / recipe / "metrics.json").write_text(json.dumps(metrics))
    assert bench_module("demo_precision").ndcg_at_10(tmp_path) == {
        "BM25": 0.72,
        "reranker": 0.75,
        "reranker ⊕ BM25 (w=0.95)": 0.79,
        "reranker+MQP": 0.73,
    }
