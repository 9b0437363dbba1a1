"""What a run records about itself: provenance.json in every model folder, best/ and model/ sharing their
files, and the reporters ``training.report_to`` names (TensorBoard, Weights & Biases, none)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import types
from datetime import datetime

import pytest
import torch

import auxir
from auxir.cli import main
from auxir.models.cross_encoder import CrossEncoder
from auxir.objectives import build_objective
from auxir.provenance import FILE_NAME, collect, git_state, read, write
from auxir.training.checkpoint import link_model
from auxir.training.config import TrainingConfig
from auxir.training.trainer import Trainer
from auxir.training.weighting import ComponentSchedule

from .helpers import tiny_batch, tiny_cross_encoder


class OneBatch:
    """A batch source of one batch an epoch."""

    def __init__(self, batch):
        self.batch_ = batch

    def num_batches(self, epoch):
        return 1

    def batch(self, epoch, index):
        return self.batch_

    def units(self, batch):
        return batch.docs.shape[0] * batch.docs.shape[1]


def trainer(model, out, valid_values=(), provenance=None, **config) -> Trainer:
    """A trainer of ``len(valid_values)`` steps (at least one) validated after each step with the given values."""
    values = iter(valid_values)
    cfg = TrainingConfig(
        output_dir=str(out),
        max_steps=max(1, len(valid_values)),
        eval_every=1,
        log_every=1,
        progress=False,
        **{"report_to": "none", **config},
    )
    return Trainer(
        model,
        {"pairwise_hinge": build_objective("pairwise_hinge")},
        {"pairwise_hinge": ComponentSchedule()},
        OneBatch(tiny_batch(model)),
        cfg,
        validate=(lambda m: {"nDCG@10": next(values)}) if valid_values else None,
        provenance=provenance,
    )


def scores(model_dir):
    model = CrossEncoder.from_pretrained(model_dir).eval()
    batch = tiny_batch(model)
    g = batch.docs.shape[1]
    with torch.no_grad():
        return model.score(
            batch.query.repeat_interleave(g, 0),
            batch.query_len.repeat_interleave(g),
            batch.docs.flatten(0, 1),
            batch.doc_len.flatten(),
        )


# ---- collect / write ------------------------------------------------------------------------------------
def test_collect_names_versions_command_recipe_and_the_corpus_fingerprint(tiny_beir):
    recipe = {"name": "monobert", "training": {"seed": 3}}
    found = collect(recipe, str(tiny_beir))
    assert found["auxir_version"] == auxir.__version__
    assert found["command"] == shlex.join(sys.argv)
    assert found["cwd"] == os.getcwd()
    assert found["python"] == platform.python_version()
    assert found["torch"] == torch.__version__
    assert found["hostname"] and datetime.fromisoformat(found["created_utc"]).tzinfo is not None
    assert found["recipe"] == recipe
    git = found["git"]
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    # The index manifests' fingerprint, computed here by hand: SHA-256 of the sorted ids, one a line.
    ids = sorted(json.loads(line)["_id"] for line in (tiny_beir / "corpus.jsonl").read_text().splitlines())
    data = found["data"]
    assert data["dataset"] == str(tiny_beir) and data["path"] == str(tiny_beir.resolve())
    assert data["corpus"] == {
        "num_docs": 48,
        "doc_ids_sha256": hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest(),
    }
    assert data["corpus_bytes"] == (tiny_beir / "corpus.jsonl").stat().st_size
    json.dumps(found)  # all of it is JSON


def test_collect_never_fails_without_data_or_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable
    found = collect({}, str(tmp_path / "missing"))
    assert found["git"] is None
    assert found["data"]["corpus"] is None
    assert collect({}, None)["data"] is None
    assert collect({}, "irds:some/dataset")["data"]["corpus"] is None  # nothing opened


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_only_for_a_tracked_source_tree(tmp_path):
    source = tmp_path / "repo" / "pkg"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    assert git_state(source) is None  # not a checkout

    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(source), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q")
    assert git_state(source) is None  # a checkout, but the package is not tracked in it
    git("add", "__init__.py")
    git("commit", "-q", "-m", "first")
    assert git_state(source) == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (source / "__init__.py").write_text("x = 1\n")
    assert git_state(source)["dirty"] is True


def test_write_is_atomic_and_reads_back(tmp_path):
    path = write(tmp_path, {"step": 3})
    assert path == tmp_path / FILE_NAME and read(tmp_path) == {"step": 3}
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temporary left
    assert read(tmp_path / "nowhere") is None


# ---- best/ and model/ -------------------------------------------------------------------------------------
def test_model_links_best_files_when_the_best_step_is_the_last(tiny_bert, tmp_path):
    provenance = {"recipe": {"name": "r"}, "auxir_version": auxir.__version__}
    result = trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1, 0.2], provenance).train()
    best, model = tmp_path / "best", tmp_path / "model"
    assert result.best_step == 2 and result.best_dir == best
    files = sorted(p.name for p in best.iterdir() if p.name != FILE_NAME)
    assert "model.safetensors" in files
    assert sorted(p.name for p in model.iterdir() if p.name != FILE_NAME) == files
    assert all(os.path.samefile(best / name, model / name) for name in files)  # one copy on disk
    assert not os.path.samefile(best / FILE_NAME, model / FILE_NAME)
    held, linked = read(best)["weights"], read(model)["weights"]
    assert (held["folder"], held["step"], held["valid"]) == ("best", 2, {"nDCG@10": 0.2})
    assert (linked["folder"], linked["step"], linked["best_step"]) == ("model", 2, 2)
    assert linked["same_weights_as"] == "best" and linked["valid"] == {"nDCG@10": 0.2}
    assert read(model)["recipe"] == read(best)["recipe"] == {"name": "r"}
    assert torch.equal(scores(model), scores(best))


def test_model_is_its_own_copy_when_an_earlier_step_was_best(tiny_bert, tmp_path):
    result = trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.3, 0.2]).train()
    best, model = tmp_path / "best", tmp_path / "model"
    assert result.best_step == 1
    assert not os.path.samefile(best / "model.safetensors", model / "model.safetensors")
    assert read(best)["weights"]["step"] == 1
    weights = read(model)["weights"]
    assert (weights["step"], weights["best_step"], weights["valid"]) == (2, 1, {"nDCG@10": 0.2})
    assert "same_weights_as" not in weights
    assert not torch.equal(scores(model), scores(best))


def test_a_stale_best_folder_is_never_linked(tiny_bert, tmp_path):
    """keep_best off: a best/ left by an earlier run, even of the same step, is not this run's weights."""
    trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1, 0.2]).train()
    stale = (tmp_path / "best" / "model.safetensors").read_bytes()
    result = trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1, 0.2], keep_best=False, seed=1).train()
    assert result.best_dir is None
    weights = tmp_path / "best" / "model.safetensors"
    assert not os.path.samefile(weights, tmp_path / "model" / "model.safetensors")
    assert weights.read_bytes() == stale
    assert "same_weights_as" not in read(tmp_path / "model")["weights"]


def test_without_validation_model_says_its_step(tiny_bert, tmp_path):
    trainer(tiny_cross_encoder(tiny_bert), tmp_path).train()
    assert not (tmp_path / "best").exists()
    weights = read(tmp_path / "model")["weights"]
    assert [weights[k] for k in ("folder", "step", "best_step", "valid")] == ["model", 1, None, None]


def test_link_model_copies_where_links_fail(tiny_bert, tmp_path, monkeypatch):
    tiny_cross_encoder(tiny_bert).save_pretrained(tmp_path / "best")
    write(tmp_path / "best", {"weights": {"folder": "best"}})

    def refuse(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    assert link_model(tmp_path / "best", tmp_path / "model", exclude=[FILE_NAME]) is False
    assert not os.path.samefile(
        tmp_path / "best" / "model.safetensors", tmp_path / "model" / "model.safetensors"
    )
    assert not (tmp_path / "model" / FILE_NAME).exists()
    assert torch.equal(scores(tmp_path / "model"), scores(tmp_path / "best"))


# ---- reporters ----------------------------------------------------------------------------------------------
def test_report_to_none_writes_no_tensorboard_folder(tiny_bert, tmp_path):
    trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1], report_to="none").train()
    assert not (tmp_path / "tensorboard").exists() and not (tmp_path / "wandb").exists()


def test_auto_without_tensorboard_reports_nowhere(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now fails
    trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1], report_to="auto").train()
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_writes_an_events_file(tiny_bert, tmp_path):
    pytest.importorskip("tensorboard")
    trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1], report_to="tensorboard").train()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_gets_every_record_training_and_validation(tiny_bert, tmp_path, monkeypatch):
    scalars, closed = [], []

    class SummaryWriter:
        def __init__(self, logdir, purge_step=None):
            assert logdir == str(tmp_path / "tensorboard") and purge_step is None

        def add_scalar(self, key, value, step):
            scalars.append((key, step))

        def close(self):
            closed.append(True)

    monkeypatch.setitem(sys.modules, "tensorboard", types.ModuleType("tensorboard"))
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = SummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1, 0.2], report_to="tensorboard").train()
    assert {("loss", 1), ("loss", 2), ("valid/nDCG@10", 1), ("valid/nDCG@10", 2)} <= set(scalars)
    assert not any(key in ("step", "epoch") for key, _ in scalars) and closed == [True]


def test_wandb_not_installed_is_a_clear_error_at_start(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ValueError, match=r"training.report_to=wandb: .*not installed; pip install wandb"):
        trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1], report_to="wandb")
    assert not (tmp_path / "train_log.jsonl").exists()


def test_wandb_logs_the_same_records_with_the_recipe_as_config(tiny_bert, tmp_path, monkeypatch):
    calls = []

    class Run:
        def log(self, values, step):
            calls.append(("log", step, sorted(values)))

        def finish(self):
            calls.append(("finish",))

    def init(**kwargs):
        calls.append(("init", kwargs))
        return Run()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    recipe = {"name": "r", "training": {"seed": 0}}
    trainer(tiny_cross_encoder(tiny_bert), tmp_path, [0.1], {"recipe": recipe}, report_to="wandb").train()
    assert calls[0] == ("init", {"dir": str(tmp_path), "config": recipe, "name": tmp_path.name})
    assert ("log", 1, ["valid/nDCG@10"]) in calls
    assert any(c[0] == "log" and c[1] == 1 and "loss" in c[2] for c in calls)
    assert calls[-1] == ("finish",)


def test_cli_report_to_sets_the_recipe_field(capsys):
    assert main(["train", "--recipe", "monobert", "--report-to", "none", "--print-recipe"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["report_to"] == "none"


def test_cli_report_to_a_missing_package_fails_before_reading_data(tiny_beir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)
    out = tmp_path / "run"
    args = ["train", "--recipe", "monobert", "--report-to", "wandb", "--output-dir", str(out)]
    assert main([*args, "--dataset", str(tiny_beir), "--model", str(tmp_path)]) == 2
    assert "pip install wandb" in capsys.readouterr().err
    assert not out.exists()
