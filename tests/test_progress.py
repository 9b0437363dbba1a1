"""Progress bars: validation reranks below the training bar, dense encoding shows one, the demo shows training.

Every tqdm bar created is recorded (``bars``), and each test makes stderr a terminal, as tqdm hides some bars
otherwise (in the test itself: pytest sets its own stderr after the fixtures ran).
"""

from __future__ import annotations

import io
import json
import sys

import pytest
import tqdm.auto

import auxir.reranking
from auxir.cli import main
from auxir.data.records import ScoredDoc
from auxir.objectives import build_objective
from auxir.reranking import rerank
from auxir.retrieval.dense import DenseEncoder, EncoderConfig
from auxir.training.config import TrainingConfig
from auxir.training.trainer import Trainer
from auxir.training.weighting import ComponentSchedule

from .training.helpers import DOCS, QUERIES, tiny_batch, tiny_cross_encoder


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal(monkeypatch) -> _Terminal:
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    return stderr


@pytest.fixture
def bars(monkeypatch) -> list:
    """Every bar created from now on (training's, reranking's, encoding's, and the libraries' own)."""
    created = []
    original = tqdm.auto.tqdm

    class Recording(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.label = kwargs.get("desc")  # a disabled bar keeps no desc
            self.shown = not self.disable  # close() sets disable
            self.line = getattr(self, "pos", None)
            created.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)  # read when a bar is made (training, encoding)
    monkeypatch.setattr(auxir.reranking, "tqdm", Recording)
    return created


@pytest.fixture(scope="module")
def tiny_collection(tmp_path_factory: pytest.TempPathFactory):
    """The helpers' queries and documents as a BEIR directory, each query judged in train and test."""
    path = tmp_path_factory.mktemp("tiny-collection")
    corpus = [{"_id": d, "title": "", "text": t} for d, t in DOCS.items()]
    (path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [{"_id": q, "text": t} for q, t in QUERIES.items()]
    (path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (path / "qrels").mkdir()
    rows = "".join(f"{q}\tp{q[1:]}\t1\n" for q in QUERIES)
    for split in ("train", "test"):
        (path / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return path


class OneBatch:
    def __init__(self, batch):
        self.batch_ = batch

    def num_batches(self, epoch):
        return 1

    def batch(self, epoch, index):
        return self.batch_

    def units(self, batch):
        return batch.docs.shape[0] * batch.docs.shape[1]


def train_with_reranking_validation(model, out, progress: bool) -> None:
    run = [ScoredDoc(q, d, 0.0) for q in QUERIES for d in DOCS]
    config = TrainingConfig(
        output_dir=str(out), max_steps=2, eval_every=1, progress=progress, report_to="none"
    )

    def validate(m):
        # As the cross-encoder family validates: reranking, with the training's progress setting.
        rerank(m, run, QUERIES, DOCS.__getitem__, top_k=6, batch_size=4, progress=config.progress)
        return {"score": 0.0}

    Trainer(
        model,
        {"pairwise_hinge": build_objective("pairwise_hinge")},
        {"pairwise_hinge": ComponentSchedule()},
        OneBatch(tiny_batch(model)),
        config,
        validate=validate,
    ).train()


def test_validation_bar_runs_below_the_training_bar_and_is_wiped(tiny_bert, tmp_path, bars, monkeypatch):
    stderr = terminal(monkeypatch)
    train_with_reranking_validation(tiny_cross_encoder(tiny_bert), tmp_path, progress=True)
    (training,) = [b for b in bars if b.label == "train"]
    validations = [b for b in bars if b.label == "rerank"]
    assert training.shown and training.line == 0 and training.n == 2
    assert len(validations) == 2  # one per validation
    for bar in validations:
        assert bar.shown and bar.n == bar.total == 5  # 18 pairs in batches of 4
        assert abs(bar.line) == 1 and bar.leave is None  # on the line below, cleared when done
    printed = stderr.getvalue()
    assert "train" in printed and "rerank" in printed


def test_no_bar_when_training_progress_is_off(tiny_bert, tmp_path, bars, monkeypatch):
    stderr = terminal(monkeypatch)
    train_with_reranking_validation(tiny_cross_encoder(tiny_bert), tmp_path, progress=False)
    ours = [b for b in bars if b.label in ("train", "rerank")]
    assert len(ours) == 3 and not any(b.shown for b in ours)
    assert "train" not in stderr.getvalue() and "rerank" not in stderr.getvalue()


def test_dense_encoding_shows_a_bar_only_when_asked(tiny_bert, bars, monkeypatch):
    stderr = terminal(monkeypatch)
    encoder = DenseEncoder(EncoderConfig(str(tiny_bert), device="cpu", batch_size=2))
    texts = list(DOCS.values())
    encoder.encode(texts)
    assert not [b for b in bars if b.label == "encode"]
    encoder.encode(texts, show_progress=True)
    (bar,) = [b for b in bars if b.label == "encode"]
    assert bar.label == "encode" and bar.shown and bar.n == bar.total == 3
    assert "encode" in stderr.getvalue()


def test_auxir_encode_shows_the_encoding_bar(tiny_bert, tiny_collection, tmp_path, bars, monkeypatch):
    terminal(monkeypatch)
    args = ["encode", "--model", str(tiny_bert), "--dataset", str(tiny_collection), "--out", str(tmp_path)]
    assert main([*args, "--device", "cpu", "--batch-size", "4"]) == 0
    assert [(b.label, b.n, b.shown) for b in bars if b.label == "encode"] == [("encode", 2, True)]


def test_the_demo_trains_with_its_progress_bar(tiny_collection, tmp_path, monkeypatch):
    import auxir.experiment

    class Started(Exception):
        pass

    def run_experiment(recipe):
        assert recipe.training.progress
        raise Started

    monkeypatch.setattr(auxir.experiment, "run_experiment", run_experiment)
    with pytest.raises(Started):
        main(["demo", "--data", str(tiny_collection), "--out", str(tmp_path), "--model", "unused"])
