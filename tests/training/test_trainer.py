"""The generic loop: one step per objective, resume, uncertainty weights, divergence, reload."""

from __future__ import annotations

import json

import pytest
import torch

from auxir.data.group_source import GroupBatchSource
from auxir.data.samples import SampleConfig, TrainGroup, TrainingSamples
from auxir.models.cross_encoder import CrossEncoder
from auxir.objectives import OBJECTIVES, build_objective
from auxir.objectives.base import Objective
from auxir.training.config import TrainingConfig
from auxir.training.trainer import Trainer, TrainingDivergedError
from auxir.training.weighting import ComponentSchedule, WeightingConfig

from .helpers import DOCS, QUERIES, tiny_batch, tiny_cross_encoder


def source(model, batch_size=2):
    batch = tiny_batch(model)  # fills the caches through the same collator code path
    del batch
    from auxir.data.collate import GroupCollator
    from auxir.data.token_cache import TokenCache

    queries, docs = TokenCache(model.tokenizer, 8), TokenCache(model.tokenizer, 32)
    queries.add(QUERIES, QUERIES.__getitem__)
    docs.add(DOCS, DOCS.__getitem__)
    groups = [
        TrainGroup("q1", "p1", 1, ["n1", "n2"]),
        TrainGroup("q2", "p2", 2, ["n2", "n3"]),
        TrainGroup("q3", "p3", 1, ["n1", "n3"]),
        TrainGroup("q1", "p1", 1, ["n3"]),
    ]
    config = SampleConfig(num_negatives=1, seed=0)
    return GroupBatchSource(TrainingSamples(groups), config, GroupCollator(queries, docs, 0), batch_size)


def make_trainer(model, tmp_path, objectives, weighting=None, **config):
    objs = {name: build_objective(name) for name in objectives}
    schedules = {name: ComponentSchedule(weight) for name, weight in objectives.items()}
    cfg = TrainingConfig(output_dir=str(tmp_path), log_every=1, progress=False, learning_rate=1e-3, **config)
    return Trainer(model, objs, schedules, source(model), cfg, weighting=weighting)


def log_records(tmp_path):
    return [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(n for n, (cls, _) in OBJECTIVES.items() if cls.requires is None))
def test_one_training_step_for_every_objective(name, tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    before = model.backbone.bert.encoder.layer[0].output.dense.weight.detach().clone()
    objectives = {"pairwise_hinge": 1.0} if OBJECTIVES[name][0].kind == "ranking" else {}
    objectives[name] = 1.0
    result = make_trainer(model, tmp_path, objectives, max_steps=1).train()
    assert result.steps == 1
    assert name in log_records(tmp_path)[0]
    after = model.backbone.bert.encoder.layer[0].output.dense.weight
    assert not torch.equal(before, after)


class Interrupted(Exception):
    pass


def test_resume_gives_the_same_next_step_loss(tiny_bert, tmp_path):
    objectives = {"pairwise_hinge": 1.0, "mqp": 0.2}
    full = tmp_path / "full"
    make_trainer(tiny_cross_encoder(tiny_bert), full, objectives, max_steps=4, save_every=2).train()
    # The same run killed while fetching the batch of step 3, after the checkpoint of step 2 ...
    part = tmp_path / "part"
    killed = make_trainer(tiny_cross_encoder(tiny_bert), part, objectives, max_steps=4, save_every=2)
    fetch, calls = killed.data.batch, []

    def batch(epoch, index):
        calls.append(index)
        if len(calls) == 3:
            raise Interrupted
        return fetch(epoch, index)

    killed.data.batch = batch
    with pytest.raises(Interrupted):
        killed.train()
    # ... and resumed by a fresh process.
    make_trainer(
        tiny_cross_encoder(tiny_bert), part, objectives, max_steps=4, save_every=2, resume=True
    ).train()
    expected = {r["step"]: r for r in log_records(full)}
    got = {r["step"]: r for r in log_records(part)}
    assert sorted(got) == [1, 2, 3, 4]
    for step in (3, 4):
        for key in ("pairwise_hinge", "mqp", "loss"):
            assert got[step][key] == pytest.approx(expected[step][key], rel=1e-6)


def test_uncertainty_weights_change_as_training_runs(tiny_bert, tmp_path):
    trainer = make_trainer(
        tiny_cross_encoder(tiny_bert),
        tmp_path,
        {"pairwise_hinge": 1.0, "mqp": 1.0},
        weighting=WeightingConfig(strategy="uncertainty", learning_rate=0.1),
        max_steps=4,
    )
    trainer.train()
    records = log_records(tmp_path)
    first, last = records[0], records[-1]
    assert "sigma2/mqp" in first
    assert last["sigma2/mqp"] != pytest.approx(first["sigma2/mqp"], abs=1e-4)
    assert last["sigma2/pairwise_hinge"] != pytest.approx(first["sigma2/pairwise_hinge"], abs=1e-4)


def test_uncertainty_weighting_matches_gdmtl_eq6():
    from auxir.training.weighting import UncertaintyWeighting

    w = UncertaintyWeighting({"a": ComponentSchedule(), "b": ComponentSchedule()}, init_sigma2=2.0)
    total = w({"a": torch.tensor(3.0), "b": torch.tensor(1.0)}, step=0)
    # 3/(2·2) + log(1+2) + 1/(2·2) + log(1+2)
    assert total.item() == pytest.approx(3 / 4 + 1 / 4 + 2 * torch.log(torch.tensor(3.0)).item(), rel=1e-6)


def test_schedule_switches_components_on_and_off():
    s = ComponentSchedule(weight=0.2, start_step=2, stop_step=5)
    assert [s.active(i) for i in range(7)] == [False, False, True, True, True, False, False]


class Exploding(Objective):
    def __call__(self, model, batch):
        return torch.tensor(float("nan"), requires_grad=True)


def test_nan_loss_stops_with_step_and_component(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    trainer = make_trainer(model, tmp_path, {"pairwise_hinge": 1.0}, max_steps=4, save_every=1)
    trainer.train()  # a good run leaves a checkpoint at step 4
    good = (tmp_path / "checkpoint-last" / "state.safetensors").read_bytes()
    bad = make_trainer(
        tiny_cross_encoder(tiny_bert), tmp_path, {"pairwise_hinge": 1.0}, max_steps=6, resume=True
    )
    bad.multitask.objectives["explode"] = Exploding(Objective.Params())
    bad.multitask.schedules["explode"] = ComponentSchedule()
    with pytest.raises(TrainingDivergedError, match=r"step 5: loss component explode is \[nan\]"):
        bad.train()
    assert (tmp_path / "checkpoint-last" / "state.safetensors").read_bytes() == good


def test_trained_checkpoint_reloads_and_reproduces_scores(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert, token_head_transform=True)
    make_trainer(model, tmp_path, {"pairwise_hinge": 1.0, "mqp": 0.2}, max_steps=3).train()
    model.eval()
    batch = tiny_batch(model)
    b, g, _ = batch.docs.shape
    args = (
        batch.query.repeat_interleave(g, 0),
        batch.query_len.repeat_interleave(g),
        batch.docs.flatten(0, 1),
        batch.doc_len.flatten(),
    )
    with torch.no_grad():
        scores = model.score(*args)
        hidden = model(model.pack(*args)).last_hidden_state
        token_logits = model.token_head(hidden)
    reloaded = CrossEncoder.from_pretrained(tmp_path / "model").eval()
    assert reloaded.config == model.config
    with torch.no_grad():
        assert torch.equal(reloaded.score(*args), scores)
        assert torch.equal(
            reloaded.token_head(reloaded(reloaded.pack(*args)).last_hidden_state), token_logits
        )


@pytest.mark.parametrize("pooler", ["keep", "identity"])
def test_cls_model_loads_in_sentence_transformers(pooler, tiny_bert, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    model = tiny_cross_encoder(tiny_bert, pooler=pooler).eval()
    model.save_pretrained(tmp_path / "ce")
    pairs = [(QUERIES["q1"], DOCS["p1"]), (QUERIES["q2"], DOCS["n2"])]
    predicted = st.CrossEncoder(
        str(tmp_path / "ce"), device="cpu", activation_fn=torch.nn.Identity()
    ).predict(pairs)
    enc = model.tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model.backbone(**enc).logits.squeeze(-1)
    assert torch.allclose(torch.as_tensor(predicted).float(), ours, atol=1e-5)


class FixedBatches:
    """A batch source that serves the given batches in order (the trainer accepts any BatchSource)."""

    def __init__(self, batches):
        self.batches = batches

    def num_batches(self, epoch):
        return len(self.batches)

    def batch(self, epoch, index):
        return self.batches[index]

    def units(self, batch):
        return batch.docs.shape[0] * batch.docs.shape[1]


def test_gradient_accumulation_equals_one_large_batch(tiny_bert, tmp_path):
    from .helpers import GROUPS

    groups = GROUPS + [("q1", ["p1", "n3"], [1, 0])]
    weights, losses = [], []
    for accumulation, sizes in ((1, [4]), (2, [2, 2])):
        model = tiny_cross_encoder(tiny_bert)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0  # the two runs must compute the same function
        batches, start = [], 0
        for size in sizes:
            batches.append(tiny_batch(model, groups[start : start + size]))
            start += size
        cfg = TrainingConfig(
            output_dir=str(tmp_path / f"acc{accumulation}"),
            max_steps=1,
            grad_accumulation=accumulation,
            progress=False,
            learning_rate=1e-3,
            max_grad_norm=None,
            warmup_ratio=0.0,
        )
        Trainer(
            model,
            {"pairwise_hinge": build_objective("pairwise_hinge")},
            {"pairwise_hinge": ComponentSchedule()},
            FixedBatches(batches),
            cfg,
        ).train()
        weights.append(model.backbone.bert.encoder.layer[1].output.dense.weight.detach().clone())
        losses.append(log_records(tmp_path / f"acc{accumulation}")[0]["loss"])
    # Adam's first step is invariant to the gradient's scale, so the weights check which examples were
    # summed; the logged loss checks the 1/accumulation scaling.
    assert torch.allclose(weights[0], weights[1], atol=1e-6)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_a_new_run_ignores_a_stale_best_folder_and_starts_a_new_log(tiny_bert, tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "train_log.jsonl").write_text('{"step": 99}\n')
    result = make_trainer(
        tiny_cross_encoder(tiny_bert), tmp_path, {"pairwise_hinge": 1.0}, max_steps=2
    ).train()
    assert result.best_dir is None  # no validation in this run chose it
    assert [r["step"] for r in log_records(tmp_path)] == [1, 2]
