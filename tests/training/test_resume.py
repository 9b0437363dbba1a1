"""Resuming a run: its saved recipe, a checkpoint left by an interrupted save, the log, file modes, folds."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
import torch

from auxir.cli import main
from auxir.recipe import load_recipe
from auxir.training.config import TrainingConfig
from auxir.training.trainer import Trainer

from .helpers import tiny_cross_encoder
from .test_experiment import tiny_overrides
from .test_trainer import Interrupted, log_records, source

OBJECTIVES = {"pairwise_hinge": 1.0, "mqp": 0.2}


def make_trainer(tiny_bert, out, **config) -> Trainer:
    from auxir.objectives import build_objective
    from auxir.training.weighting import ComponentSchedule

    model = tiny_cross_encoder(tiny_bert)
    cfg = TrainingConfig(output_dir=str(out), progress=False, learning_rate=1e-3, **config)
    objectives = {name: build_objective(name) for name in OBJECTIVES}
    schedules = {name: ComponentSchedule(weight) for name, weight in OBJECTIVES.items()}
    return Trainer(model, objectives, schedules, source(model), cfg)


def kill_at_batch(trainer: Trainer, call: int) -> None:
    """Make ``trainer`` raise while fetching its ``call``-th batch (a kill between two log records)."""
    fetch, calls = trainer.data.batch, []

    def batch(epoch, index):
        calls.append(index)
        if len(calls) == call:
            raise Interrupted
        return fetch(epoch, index)

    trainer.data.batch = batch


def assert_same_records(got: list[dict], expected: list[dict]) -> None:
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        for key in ("pairwise_hinge", "mqp", "loss"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-6)


# ---- the training loop -------------------------------------------------------------------------------
def test_resumed_log_repeats_no_step_and_averages_like_an_uninterrupted_run(tiny_bert, tmp_path):
    # save_every=3 is no multiple of log_every=2: the record of step 4 averages steps 3 (before the
    # checkpoint) and 4 (after it).
    settings = {"max_steps": 6, "log_every": 2, "save_every": 3}
    make_trainer(tiny_bert, tmp_path / "full", **settings).train()
    part = tmp_path / "part"
    killed = make_trainer(tiny_bert, part, **settings)
    kill_at_batch(killed, 5)  # after the record of step 4, the checkpoint is step 3's
    with pytest.raises(Interrupted):
        killed.train()
    assert [r["step"] for r in log_records(part)] == [2, 4]
    make_trainer(tiny_bert, part, resume=True, **settings).train()
    assert_same_records(log_records(part), log_records(tmp_path / "full"))


def test_resume_recovers_the_newest_checkpoint_an_interrupted_rename_left(tiny_bert, tmp_path):
    settings = {"max_steps": 6, "log_every": 1, "save_every": 2}
    full = make_trainer(tiny_bert, tmp_path / "full", **settings)
    snapshots, save = tmp_path / "snapshots", full._save

    def save_and_copy(path, optimizer, scheduler, state):
        save(path, optimizer, scheduler, state)
        shutil.copytree(path, snapshots / str(state.step))

    full._save = save_and_copy
    full.train()
    # The run killed between the two renames of step 4's save: the old checkpoint (step 2) moved aside,
    # the new one (step 4) complete in its temporary folder, no checkpoint-last; step 5 was logged.
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(snapshots / "2", part / ".checkpoint-last.old-0123abcd")
    shutil.copytree(snapshots / "4", part / ".checkpoint-last.abcd_123.tmp")
    incomplete = part / ".checkpoint-last.zzzzzzzz.tmp"  # a later save cut short: not a checkpoint
    incomplete.mkdir()
    (incomplete / "state.safetensors").write_bytes(b"")
    records = (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()
    (part / "train_log.jsonl").write_text("\n".join(records[:5]) + '\n{"step": 6, "lo')  # cut by the kill
    (part / ".metrics.json.k1llsaf3.tmp").write_text("{")  # a killed atomic_write elsewhere

    result = make_trainer(tiny_bert, part, resume=True, **settings).train()

    assert result.steps == 6
    assert_same_records(log_records(part), log_records(tmp_path / "full"))
    assert sorted(p.name for p in part.iterdir() if p.name.startswith(".")) == []
    assert json.loads((part / "checkpoint-last" / "trainer_state.json").read_text())["step"] == 6


def test_resume_without_a_checkpoint_stops_and_keeps_the_log(tiny_bert, tmp_path):
    (tmp_path / "train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    incomplete = tmp_path / ".checkpoint-last.abcdefgh.tmp"  # killed while writing the first checkpoint
    incomplete.mkdir()
    (incomplete / "state.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: nothing to resume: no checkpoint-last"):
        make_trainer(tiny_bert, tmp_path, max_steps=2, resume=True).train()
    assert (tmp_path / "train_log.jsonl").read_text() == '{"step": 1, "loss": 1.0}\n'


def test_checkpoint_and_model_files_have_the_usual_mode(tiny_bert, tmp_path):
    previous = os.umask(0o022)
    try:
        make_trainer(tiny_bert, tmp_path, max_steps=1).train()
    finally:
        os.umask(previous)
    files = [p for folder in ("checkpoint-last", "model") for p in (tmp_path / folder).rglob("*")]
    assert any(p.name.endswith(".safetensors") for p in files)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert modes == dict.fromkeys(modes, 0o644)


# ---- the recipe of a resumed run ---------------------------------------------------------------------
def saved_run(tiny_bert, tiny_beir, out) -> dict:
    """A run folder as ``auxir train`` leaves it, as far as the recipe goes."""
    out.mkdir()
    recipe = load_recipe("monobert", tiny_overrides(tiny_bert, tiny_beir, out))
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict()))
    return recipe.to_dict()


def printed_recipe(capsys, *args) -> dict:
    assert main(["train", "--resume", *args, "--print-recipe"]) == 0
    return json.loads(capsys.readouterr().out)


def test_resume_reloads_the_saved_recipe(tiny_bert, tiny_beir, tmp_path, capsys):
    saved = saved_run(tiny_bert, tiny_beir, tmp_path / "run")
    got = printed_recipe(capsys, "--output-dir", str(tmp_path / "run"))
    assert got == {**saved, "training": {**saved["training"], "resume": True}}


def test_resume_accepts_the_safe_overrides(tiny_bert, tiny_beir, tmp_path, capsys):
    saved = saved_run(tiny_bert, tiny_beir, tmp_path / "run")
    safe = ["training.log_every=1", "training.save_every=2", "training.device=cpu", "evaluation.batch_size=3"]
    args = ["--output-dir", str(tmp_path / "run")] + [a for item in safe for a in ("--set", item)]
    got = printed_recipe(capsys, *args)
    assert got["training"] == {
        **saved["training"],
        "resume": True,
        "log_every": 1,
        "save_every": 2,
        "device": "cpu",
    }
    assert got["evaluation"]["batch_size"] == 3 and got["model"] == saved["model"]


def test_resume_refuses_other_changes_and_lists_them(tiny_bert, tiny_beir, tmp_path, capsys):
    saved_run(tiny_bert, tiny_beir, tmp_path / "run")
    args = ["--output-dir", str(tmp_path / "run"), "--set", "training.max_steps=8", "--seed", "3"]
    assert main(["train", "--resume", *args]) == 2
    error = capsys.readouterr().err
    assert "cannot resume with settings that differ from the run's recipe.json" in error
    assert "training.max_steps: 4 -> 8; training.seed: 0 -> 3" in error
    assert "samples.seed: 0 -> 3" in error
    assert "may change only evaluation.batch_size, training.device" in error


def test_resume_with_a_recipe_checks_it_against_the_saved_one(tiny_bert, tiny_beir, tmp_path, capsys):
    out = tmp_path / "run"
    saved_run(tiny_bert, tiny_beir, out)
    same = tiny_overrides(tiny_bert, tiny_beir, out)
    args = [a for item in same for a in ("--set", item)]
    assert printed_recipe(capsys, "--recipe", "monobert", *args)["name"] == "monobert"
    assert main(["train", "--resume", "--recipe", "sjtf-mqp", *args]) == 2
    assert "objectives.1.name: '(absent)' -> 'mqp'" in capsys.readouterr().err


def test_resume_without_a_saved_recipe_names_the_folder(tmp_path, capsys):
    assert main(["train", "--resume", "--output-dir", str(tmp_path / "typo")]) == 2
    assert f"{tmp_path / 'typo'}: no recipe.json, so no run to resume" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_run_experiment_refuses_a_changed_recipe_on_resume(tiny_bert, tiny_beir, tmp_path):
    from auxir.experiment import run_experiment

    saved_run(tiny_bert, tiny_beir, tmp_path / "run")
    overrides = tiny_overrides(tiny_bert, tiny_beir, tmp_path / "run", "training.resume=true", "data.fold=1")
    with pytest.raises(ValueError, match=r"cannot resume .*\(data.fold: 0 -> 1\)"):
        run_experiment(load_recipe("monobert", overrides))


def test_cli_resume_of_a_finished_run_continues_it(tiny_bert, tiny_beir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--recipe", "monobert"]
    for item in tiny_overrides(tiny_bert, tiny_beir, out, "data.valid_fraction=0", "training.save_every=2"):
        args += ["--set", item]
    assert main(args) == 0
    log = (out / "train_log.jsonl").read_text()
    assert main(["train", "--resume", "--output-dir", str(out)]) == 0
    assert "| monobert |" in capsys.readouterr().out
    assert (out / "train_log.jsonl").read_text() == log  # nothing left to train


# ---- folds -------------------------------------------------------------------------------------------
def test_folds_honour_the_query_limits(tiny_beir, tmp_path):
    from auxir.data.dataset import load_dataset
    from auxir.evaluation.folds import Fold, save_folds
    from auxir.experiment import split_queries

    queries = sorted(load_dataset(str(tiny_beir)).queries)
    folds = tmp_path / "folds.json"
    save_folds(folds, [Fold(train=queries[:20], valid=queries[20:26], test=queries[26:])])
    limits = ["data.max_train_queries=5", "data.max_valid_queries=2", "data.max_eval_queries=3"]
    recipe = load_recipe(None, [f"data.dataset={tiny_beir}", f"data.folds={folds}", *limits])
    split = split_queries(load_dataset(str(tiny_beir)), recipe)
    assert (split.train, split.valid, split.test) == (queries[:5], queries[20:22], queries[26:29])


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran on load",))


def test_a_crafted_optimizer_file_is_refused(tiny_bert, tmp_path, capsys):
    from .test_trainer import make_trainer

    model = tiny_cross_encoder(tiny_bert)
    make_trainer(model, tmp_path, {"pairwise_hinge": 1.0}, max_steps=1, save_every=1).train()
    blob = torch.load(tmp_path / "checkpoint-last" / "optimizer.pt", weights_only=True)  # our own file loads
    assert set(blob) == {"optimizer", "scheduler", "rng"}
    torch.save({"optimizer": _RunsCode()}, tmp_path / "checkpoint-last" / "optimizer.pt")
    trainer = make_trainer(
        tiny_cross_encoder(tiny_bert), tmp_path, {"pairwise_hinge": 1.0}, max_steps=2, resume=True
    )
    with pytest.raises(ValueError, match=r"optimizer\.pt: expected optimizer.*refused"):
        trainer.train()
    assert "this ran on load" not in capsys.readouterr().out
