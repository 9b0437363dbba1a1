"""``auxir tune``: search space checks, the search loop against a fake trainer, and one real search."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from auxir.recipe import load_recipe
from auxir.tuning import JOURNAL, STUDY_NAME, grid_points, load_space, override, tune

REPO = Path(__file__).resolve().parents[2]

# Stands in for ``python -m auxir train``: reads the --set values, writes what a training run writes.
FAKE_TRAIN = """
import json, math, os, sys, time
from pathlib import Path
import yaml

argv = sys.argv[1:]
sets = dict(argv[i + 1].split("=", 1) for i, word in enumerate(argv) if word == "--set")
values = {key: yaml.safe_load(raw) for key, raw in sets.items()}
out = Path(values["training.output_dir"])
started = time.time()
if values.get("data.first_stage") == "crash":
    sys.stderr.write("Traceback ...\\nboom: the first stage crashed\\n")
    sys.exit(3)
time.sleep(0.3)
lr = values.get("training.learning_rate", 1e-4)
value = 1 - abs(math.log10(lr) + 4) / 10 - 0.01 * values.get("training.epochs", 0)
out.mkdir(parents=True, exist_ok=True)
for name in ("model", "best", "checkpoint-last"):
    (out / name).mkdir(exist_ok=True)
    (out / name / "model.safetensors").write_text("weights")
(out / "recipe.json").write_text(json.dumps({"evaluation": {"valid_metric": "nDCG@10"}}))
metrics = {"best_valid": value, "best_step": 4, "reranked": {"nDCG@10": 0.5}, "first_stage": {"nDCG@10": 0.4}}
(out / "metrics.json").write_text(json.dumps(metrics))
with open(os.environ["FAKE_TRAIN_CALLS"], "a") as calls:
    calls.write(json.dumps({"params": values, "start": started, "end": time.time()}) + "\\n")
"""


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("FAKE_TRAIN_CALLS", str(tmp_path / "calls.jsonl"))
    return python


def calls(tmp_path: Path) -> list[dict]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


def write_space(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- the search space file --------------------------------------------------------------------------------
SPACE_ERRORS = {
    "unknown type": (
        "params:\n  a.b: {type: loguniform, low: 1, high: 2}\n",
        r":2: parameter 'a.b': unknown type 'loguniform'",
    ),
    "low >= high (float)": (
        "params:\n  a.b: {type: float, low: 0.3, high: 0.1}\n",
        r"low must be below high, found low=0.3 >= high=0.1",
    ),
    "low == high (int)": ("params:\n  a.b: {type: int, low: 2, high: 2}\n", r"'a.b': low must be below high"),
    "int bound not an integer": (
        "params:\n  a.b: {type: int, low: 1.5, high: 4}\n",
        r"low must be an integer, found 1.5",
    ),
    "float bound not a number": (
        "params:\n  a.b: {type: float, low: small, high: 4}\n",
        r"low must be a finite number, found 'small'",
    ),
    "missing high": ("params:\n  a.b: {type: float, low: 0.1}\n", r"needs low and high; high is missing"),
    "log with low <= 0": (
        "params:\n  a.b: {type: float, low: 0, high: 1, log: true}\n",
        r"log scale needs low > 0",
    ),
    "log and step": (
        "params:\n  a.b: {type: float, low: 0.1, high: 1, log: true, step: 0.1}\n",
        r"either log or step",
    ),
    "empty choices": (
        "params:\n  a.b: {type: categorical, choices: []}\n",
        r"choices must be a non-empty list, found \[\]",
    ),
    "choices not a list": (
        "params:\n  a.b: {type: categorical, choices: bm25}\n",
        r"choices must be a non-empty list, found 'bm25'",
    ),
    "repeated choice": (
        "params:\n  a.b: {type: categorical, choices: [4, 8, 4]}\n",
        r"choices repeat a value",
    ),
    "mapping choice": (
        "params:\n  a.b: {type: categorical, choices: [{x: 1}]}\n",
        r"choices must be strings, numbers",
    ),
    "key of another type": (
        "params:\n  a.b: {type: float, low: 0.1, high: 1, choices: [1]}\n",
        r"unknown key\(s\) \['choices'\] for type float",
    ),
    "spec not a mapping": ("params:\n  a.b: [1, 2]\n", r"parameter 'a.b': expected a mapping"),
    "bad field name": (
        "params:\n  a..b: {type: int, low: 1, high: 2}\n",
        r"expected a recipe field such as training.learning_rate, found 'a..b'",
    ),
    "no params": ("metric: valid\n", r"params must be a non-empty mapping"),
    "empty params": ("params: {}\n", r"params must be a non-empty mapping"),
    "test metric": (
        "metric: test\nparams:\n  a.b: {type: int, low: 1, high: 2}\n",
        r":1: metric must be 'valid' .*found 'test'",
    ),
    "direction": (
        "direction: up\nparams:\n  a.b: {type: int, low: 1, high: 2}\n",
        r":1: direction must be maximize or minimize, found 'up'",
    ),
    "unknown top-level key": (
        "param:\n  a.b: {type: int, low: 1, high: 2}\n",
        r"unknown key\(s\) \['param'\]",
    ),
    "fixed and searched": (
        "params:\n  a.b: {type: int, low: 1, high: 2}\nfixed:\n  a.b: 3\n",
        r":4: \['a.b'\] are both searched",
    ),
    "fixed not a mapping": (
        "params:\n  a.b: {type: int, low: 1, high: 2}\nfixed: [a.b=3]\n",
        r"fixed must be a mapping",
    ),
    "also not a list of fields": (
        "params:\n  a.b: {type: int, low: 1, high: 2, also: a.c}\n",
        r":2: parameter 'a.b': also must be a list of other recipe fields, found 'a.c'",
    ),
    "also names a searched field": (
        "params:\n  a.b: {type: int, low: 1, high: 2, also: [a.c]}\n  a.c: {type: int, low: 1, high: 2}\n",
        r":1: \['a.c'\] named in an also: list and searched, fixed or tied twice",
    ),
    "not a mapping": ("- a.b\n", r"expected a mapping with metric, direction, params"),
    "not YAML": ("params: {a.b: [\n", r"not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(SPACE_ERRORS))
def test_space_errors_name_the_file_parameter_and_what_was_found(tmp_path, case):
    text, message = SPACE_ERRORS[case]
    path = write_space(tmp_path / "space.yaml", text)
    with pytest.raises(ValueError, match=message) as error:
        load_space(path)
    assert str(path) in str(error.value)


def test_missing_space_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-space.yaml"):
        load_space(tmp_path / "no-space.yaml")


def test_sample_space_parses_and_fits_every_recipe_choice():
    space = load_space(REPO / "bench/spaces/reranker.yaml")
    assert (space.metric, space.direction) == ("valid", "maximize")
    lr, epochs = space.params["training.learning_rate"], space.params["training.epochs"]
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 1e-5, 3e-4, True)
    assert (epochs.type, epochs.low, epochs.high) == ("int", 3, 10)
    assert space.params["samples.num_negatives"].choices == [4, 8, 15]
    losses = space.params["objectives.0.name"].choices
    assert losses == ["listwise_softmax", "pairwise_hinge", "pairwise_softmax"]
    for loss in losses:  # the fixed empty params suit every loss, over the recipe's {margin: 1.0}
        recipe = load_recipe("monobert", [*space.fixed_overrides(), f"objectives.0.name={loss}"])
        assert recipe.objectives[0].name == loss and recipe.objectives[0].params == {}


@pytest.mark.parametrize("value", [1e-5, 2.5e-4, 3, "bm25", "1e-5", "true", {}, [4, 8], True, None, 0.1])
def test_override_values_read_back_as_written(value):
    key, raw = override("a.b", value).split("=", 1)
    assert key == "a.b" and yaml.safe_load(raw) == value and type(yaml.safe_load(raw)) is type(value)


def test_grid_takes_categorical_params_only(tmp_path):
    path = write_space(
        tmp_path / "space.yaml",
        "params:\n  data.first_stage: {type: categorical, choices: [bm25, x]}\n"
        "  training.epochs: {type: int, low: 1, high: 3}\n",
    )
    with pytest.raises(
        ValueError, match=r"grid sampler takes categorical parameters only; \['training.epochs'\]"
    ):
        tune("monobert", path, tmp_path / "out", trials=2, sampler="grid")
    assert not (tmp_path / "out").exists()


def test_a_space_that_breaks_the_recipe_fails_before_any_trial(tmp_path, fake_python):
    # objective 0 set to the hinge with {margin: 1.0}, which listwise_softmax does not take.
    hinge = ["objectives=[{name: pairwise_hinge, weight: 1.0, params: {margin: 1.0}}]"]
    path = write_space(
        tmp_path / "space.yaml",
        "params:\n  objectives.0.name: {type: categorical, choices: [pairwise_hinge, listwise_softmax]}\n",
    )
    with pytest.raises(
        ValueError, match=r"objectives.0.name=listwise_softmax does not fit recipe 'monobert'.*fixed"
    ):
        tune("monobert", path, tmp_path / "out", trials=2, overrides=hinge, python=fake_python)
    assert calls(tmp_path) == []


# ---- the search loop, against a fake trainer ----------------------------------------------------------
FAKE_SPACE = """\
params:
  training.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
  training.epochs: {type: int, low: 1, high: 5}
  data.first_stage: {type: categorical, choices: [bm25, crash]}
"""


def test_search_records_every_trial_and_resumes(tmp_path, fake_python):
    space, out = write_space(tmp_path / "space.yaml", FAKE_SPACE), tmp_path / "out"
    kwargs = dict(jobs=2, overrides=["training.batch_size=4"], sampler="random", seed=3, python=fake_python)
    result = tune("monobert", space, out, trials=6, **kwargs)

    lines = records(out)
    assert sorted(r["trial"] for r in lines) == list(range(6))
    for line in lines:
        params = line["params"]
        assert 1e-5 <= params["training.learning_rate"] <= 1e-2 and isinstance(params["training.epochs"], int)
        assert 1 <= params["training.epochs"] <= 5
        trial_dir = Path(line["output_dir"])
        assert trial_dir == out / f"trial-{line['trial']:04d}"
        assert not any((trial_dir / name).exists() for name in ("model", "best", "checkpoint-last"))
        if params["data.first_stage"] == "crash":  # failed, and the search went on
            assert line["state"] == "FAIL" and line["value"] is None
            assert "exit status 3" in line["error"] and "boom: the first stage crashed" in line["error"]
        else:
            assert line["state"] == "COMPLETE" and line["error"] is None
            assert line["value"] == json.loads((trial_dir / "metrics.json").read_text())["best_valid"]
            assert line["test_metrics_not_used_for_selection"]["reranked"] == {"nDCG@10": 0.5}
    complete = [r for r in lines if r["state"] == "COMPLETE"]
    assert (result.n_complete, result.n_failed) == (len(complete), 6 - len(complete))
    best = max(complete, key=lambda r: r["value"])
    assert (result.best_trial, result.best_value, result.best_params) == (
        best["trial"],
        best["value"],
        best["params"],
    )

    recipe = load_recipe(str(out / "best.yaml"))
    assert recipe.training.learning_rate == best["params"]["training.learning_rate"]
    assert recipe.training.epochs == best["params"]["training.epochs"]
    assert recipe.training.batch_size == 4 and recipe.training.output_dir == "outputs/monobert"
    header = (out / "best.yaml").read_text()
    assert f"# best: trial {best['trial']}," in header and "# sampler: random, seed 3;" in header
    assert "#     training.epochs: {type: int, low: 1, high: 5}" in header  # the space, as written

    runs = calls(tmp_path)
    assert len(runs) == len(complete)
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    running = [sum(step for _, step in events[: i + 1]) for i in range(len(events))]
    assert max(running) <= 2  # never more than ``jobs`` trials at once

    again = tune("monobert", space, out, trials=6, **kwargs)  # resume: nothing left to run
    assert len(calls(tmp_path)) == len(runs) and len(records(out)) == 6
    assert (again.best_trial, again.n_complete, again.n_failed) == (
        result.best_trial,
        result.n_complete,
        result.n_failed,
    )

    more = tune("monobert", space, out, trials=8, **kwargs)  # two more, not repeats of the first draws
    lines = records(out)
    assert sorted(r["trial"] for r in lines) == list(range(8)) and more.n_complete + more.n_failed == 8
    first = {json.dumps(r["params"], sort_keys=True) for r in lines[:6]}
    assert not first & {json.dumps(r["params"], sort_keys=True) for r in lines[6:]}


def test_resuming_with_another_space_is_an_error(tmp_path, fake_python):
    space, out = write_space(tmp_path / "space.yaml", FAKE_SPACE), tmp_path / "out"
    tune("monobert", space, out, trials=1, sampler="random", python=fake_python)
    other = write_space(tmp_path / "other.yaml", FAKE_SPACE.replace("high: 5", "high: 6"))
    with pytest.raises(ValueError, match=r"holds a search with another space"):
        tune("monobert", other, out, trials=2, sampler="random", python=fake_python)
    with pytest.raises(ValueError, match=r"holds a search with another overrides"):
        tune(
            "monobert",
            space,
            out,
            trials=2,
            sampler="random",
            overrides=["training.seed=1"],
            python=fake_python,
        )


def test_an_interrupted_trial_is_recorded_and_runs_again(tmp_path, fake_python):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    space, out = write_space(tmp_path / "space.yaml", FAKE_SPACE), tmp_path / "out"
    tune("monobert", space, out, trials=1, sampler="tpe", python=fake_python)
    # A search killed while its trial 1 ran: the journal holds a trial that never finished.
    study = optuna.load_study(
        study_name=STUDY_NAME, storage=JournalStorage(JournalFileBackend(str(out / JOURNAL)))
    )
    params = {"training.learning_rate": 1e-4, "training.epochs": 2, "data.first_stage": "bm25"}
    study.enqueue_trial(params)
    distributions = {name: spec.distribution() for name, spec in load_space(space).params.items()}
    assert study.ask(distributions).params == params

    result = tune("monobert", space, out, trials=2, sampler="tpe", python=fake_python)
    lines = {r["trial"]: r for r in records(out)}
    assert lines[1]["state"] == "INTERRUPTED" and lines[1]["params"] == params
    assert lines[2]["params"] == params  # ran again with the same parameters
    assert result.n_complete + result.n_failed == 2 and len(calls(tmp_path)) <= 2


def test_grid_runs_each_point_once_and_stops(tmp_path, fake_python):
    space = write_space(
        tmp_path / "space.yaml",
        "params:\n  training.learning_rate: {type: categorical, choices: [1.0e-4, 1.0e-3]}\n"
        "  data.first_stage: {type: categorical, choices: [bm25, crash]}\n",
    )
    assert len(grid_points(load_space(space), seed=0)) == 4
    result = tune("monobert", space, tmp_path / "out", trials=10, jobs=2, sampler="grid", python=fake_python)
    lines = records(tmp_path / "out")
    assert len(lines) == 4 and (result.n_complete, result.n_failed) == (2, 2)
    points = {(r["params"]["training.learning_rate"], r["params"]["data.first_stage"]) for r in lines}
    assert points == {(lr, fs) for lr in (1e-4, 1e-3) for fs in ("bm25", "crash")}
    assert result.best_params == {"training.learning_rate": 1e-4, "data.first_stage": "bm25"}


def test_also_writes_the_drawn_value_to_every_tied_field(tmp_path, fake_python):
    """MADRAL's λ weights two objectives (eq. 8): one drawn value, both weights, in the trials and best.yaml."""
    space = write_space(
        tmp_path / "space.yaml",
        "params:\n  objectives.1.weight: {type: categorical, choices: [0.03, 0.3],"
        " also: [objectives.2.weight]}\n",
    )
    result = tune("madral", space, tmp_path / "out", trials=2, jobs=2, sampler="grid", python=fake_python)
    assert result.n_complete == 2
    seen = sorted(
        (c["params"]["objectives.1.weight"], c["params"]["objectives.2.weight"]) for c in calls(tmp_path)
    )
    assert seen == [(0.03, 0.03), (0.3, 0.3)]
    best = yaml.safe_load((tmp_path / "out/best.yaml").read_text())
    assert best["objectives"][1]["weight"] == best["objectives"][2]["weight"] in (0.03, 0.3)


# ---- a real search: tiny BERT on the tiny BEIR collection, through the command line ------------------
def tune_cli(argv: list[str]) -> int:
    from auxir.cli import tune as tune_command

    parser = argparse.ArgumentParser(prog="auxir")
    tune_command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_real_search_with_a_failing_trial_then_resume(tiny_bert, tiny_beir, tmp_path, capsys):
    missing = tmp_path / "missing-run.trec"  # a first stage that does not exist: that trial fails
    space = write_space(
        tmp_path / "space.yaml",
        "metric: valid\ndirection: maximize\nparams:\n"
        "  training.learning_rate: {type: categorical, choices: [1.0e-4, 1.0e-3]}\n"
        f"  data.first_stage: {{type: categorical, choices: [bm25, '{missing}']}}\n",
    )
    out = tmp_path / "tune"
    argv = ["tune", "--recipe", "monobert", "--space", str(space), "--trials", "3", "--jobs", "2"]
    argv += ["--out", str(out), "--sampler", "grid", "--model", str(tiny_bert), "--dataset", str(tiny_beir)]
    for item in [
        "training.max_steps=4",
        "training.batch_size=4",
        "architecture.max_length=48",
        "architecture.max_query_length=8",
        "data.rerank_top_k=5",
        "data.first_stage_k=20",
        "data.valid_fraction=0.25",
    ]:
        argv += ["--set", item]
    assert tune_cli(argv) == 0
    printed = capsys.readouterr().out

    lines = records(out)
    assert sorted(r["trial"] for r in lines) == [0, 1, 2]
    complete = [r for r in lines if r["state"] == "COMPLETE"]
    failed = [r for r in lines if r["state"] == "FAIL"]
    assert complete and failed  # 3 of the 4 grid points: at least one of each first stage
    for line in complete:
        trial_dir = Path(line["output_dir"])
        metrics = json.loads((trial_dir / "metrics.json").read_text())
        assert line["params"]["data.first_stage"] == "bm25"
        assert line["value"] == metrics["best_valid"] and math.isfinite(line["value"])
        assert line["test_metrics_not_used_for_selection"]["reranked"] == metrics["reranked"]
        for kept in ("metrics.json", "recipe.json", "train_log.jsonl", "reranked.trec"):
            assert (trial_dir / kept).exists()
    for line in failed:
        assert line["params"]["data.first_stage"] == str(missing)
        assert "exit status 2" in line["error"] and "missing-run.trec" in line["error"]
    for trial_dir in out.glob("trial-*"):
        assert not any((trial_dir / name).exists() for name in ("model", "best", "checkpoint-last"))

    best = max(complete, key=lambda r: r["value"])
    recipe = load_recipe(str(out / "best.yaml"))
    assert recipe.training.learning_rate == best["params"]["training.learning_rate"]
    assert recipe.data.first_stage == "bm25" and recipe.model == str(tiny_bert)
    assert recipe.data.dataset == str(tiny_beir) and recipe.training.max_steps == 4
    assert f"best trial {best['trial']}: valid nDCG@10 = {best['value']:.4f}" in printed
    assert f"{len(complete)} complete, {len(failed)} failed" in printed

    assert tune_cli(argv) == 0  # resume with the same out dir and trial count: no new trial
    assert len(records(out)) == 3 and len(list(out.glob("trial-*"))) == 3
    assert f"best trial {best['trial']}:" in capsys.readouterr().out
