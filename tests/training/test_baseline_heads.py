"""Scoring heads that start from what the checkpoint knows, and the trainer's tools for new heads:
pooler detection, bi-encoder signal, learning rate of new parameters, head warm-up, gradient-ratio
weighting and its logged statistics, early stopping."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig, FirstToken
from auxir.objectives import build_objective
from auxir.training.config import TrainingConfig
from auxir.training.trainer import Trainer
from auxir.training.weighting import ComponentSchedule, WeightingConfig

from .helpers import tiny_batch, tiny_cross_encoder
from .test_trainer import FixedBatches, make_trainer


def test_auto_skips_a_pooler_that_was_never_trained(tiny_bert):
    # tiny_bert is a freshly initialised BertModel: its pooler bias is exactly 0, as in
    # sentence-transformers checkpoints.
    model = tiny_cross_encoder(tiny_bert)
    assert model.config.pooler == "skip"
    assert isinstance(model.backbone.base_model.pooler, FirstToken)
    batch = tiny_batch(model)
    inputs = model.pack(batch.query, batch.query_len, batch.docs[:, 0], batch.doc_len[:, 0])
    out = model.backbone(
        input_ids=inputs.input_ids,
        attention_mask=inputs.attention_mask,
        token_type_ids=inputs.token_type_ids,
        output_hidden_states=True,
    )
    expected = model.backbone.classifier(out.hidden_states[-1][:, 0]).squeeze(-1)  # no pooler in between
    assert torch.allclose(model.eval()(inputs).scores, expected, atol=1e-6)


def test_auto_keeps_a_trained_pooler(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert, pooler="keep")
    with torch.no_grad():
        model.backbone.base_model.pooler.dense.bias.fill_(0.1)  # "trained": the bias moved
    model.save_pretrained(tmp_path / "trained")
    reloaded = CrossEncoder.from_pretrained(tmp_path / "trained", CrossEncoderConfig(pooler="auto"))
    assert reloaded.config.pooler == "keep"
    assert not isinstance(reloaded.backbone.base_model.pooler, FirstToken)


def test_skipped_pooler_round_trips(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert).eval()
    model.save_pretrained(tmp_path / "m")
    reloaded = CrossEncoder.from_pretrained(tmp_path / "m").eval()
    assert reloaded.config.pooler == "skip"
    batch = tiny_batch(model)
    args = (batch.query, batch.query_len, batch.docs[:, 0], batch.doc_len[:, 0])
    assert torch.allclose(model.score(*args), reloaded.score(*args), atol=1e-6)
    assert reloaded.new_parameter_names() == set()  # everything in a trained checkpoint was trained


def test_identity_pooler_starts_at_the_identity(tiny_bert):
    model = tiny_cross_encoder(tiny_bert, pooler="identity")
    dense = model.backbone.base_model.pooler.dense
    assert torch.equal(dense.weight, torch.eye(dense.weight.shape[0])) and not dense.bias.any()
    assert "backbone.bert.pooler.dense.weight" in model.new_parameter_names()


def test_new_parameters_are_the_random_heads(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    assert model.new_parameter_names() == {
        "backbone.classifier.weight",
        "backbone.classifier.bias",
        "token_head.bias",
        "bi_encoder_weight",
    }


@pytest.mark.parametrize("mode", ["joint", "separate"])
def test_bi_encoder_signal_is_added_to_the_head_score(mode, tiny_bert):
    plain = tiny_cross_encoder(tiny_bert).eval()
    model = tiny_cross_encoder(tiny_bert, bi_encoder=mode, bi_encoder_scale=7.0).eval()
    batch = tiny_batch(model)
    q, ql, d, dl = batch.query, batch.query_len, batch.docs[:, 0], batch.doc_len[:, 0]
    with torch.no_grad():
        if mode == "separate":
            # The query and the document alone, framed [CLS] x [SEP], mean-pooled: a hand-built reference.
            def alone(ids, n):
                row = torch.tensor([[2, *ids[:n].tolist(), 3]])
                return model.backbone.base_model(input_ids=row).last_hidden_state.mean(1)[0]

            cosine = torch.stack(
                [F.cosine_similarity(alone(q[i], ql[i]), alone(d[i], dl[i]), dim=0) for i in range(len(q))]
            )
        else:
            inputs = model.pack(q, ql, d, dl)
            last = model(inputs).last_hidden_state
            qm, dm = inputs.segment_masks()
            mean = lambda m: (last * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)  # noqa: E731
            cosine = F.cosine_similarity(mean(qm), mean(dm), dim=-1)
        assert torch.allclose(model.score(q, ql, d, dl), plain.score(q, ql, d, dl) + 7.0 * cosine, atol=1e-5)


def test_new_parameters_get_their_own_learning_rate(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    trainer = make_trainer(
        model, tmp_path, {"pairwise_hinge": 1.0}, max_steps=1, new_parameters_learning_rate=0.5
    )
    optimizer = trainer._optimizer()
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr_of[id(model.backbone.classifier.weight)] == 0.5
    assert lr_of[id(model.backbone.bert.encoder.layer[0].output.dense.weight)] == 1e-3


def test_head_warm_up_freezes_the_encoder(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    encoder = model.backbone.bert.encoder.layer[1].output.dense.weight
    embeddings = model.backbone.bert.embeddings.word_embeddings.weight
    head = model.backbone.classifier.weight
    before = [t.detach().clone() for t in (encoder, embeddings, head)]
    make_trainer(
        model, tmp_path, {"pairwise_hinge": 1.0, "mqp": 1.0}, max_steps=2, head_warmup_steps=2
    ).train()
    assert torch.equal(encoder, before[0]) and torch.equal(embeddings, before[1])
    assert not torch.equal(head, before[2])
    # after the warm-up the encoder learns
    model = tiny_cross_encoder(tiny_bert)
    make_trainer(model, tmp_path / "b", {"pairwise_hinge": 1.0}, max_steps=3, head_warmup_steps=2).train()
    assert not torch.equal(model.backbone.bert.encoder.layer[1].output.dense.weight, before[0])


def _shared_grad(model, loss):
    grads = torch.autograd.grad(loss, model.shared_parameters(), retain_graph=True, allow_unused=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).flatten()
            for g, p in zip(grads, model.shared_parameters())
        ]
    )


@pytest.mark.parametrize("ratio", [0.2, 1.0])
def test_grad_ratio_weighting_holds_the_ratio(ratio, tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    trainer = make_trainer(
        model,
        tmp_path,
        {"pairwise_hinge": 1.0, "mqp": ratio},
        weighting=WeightingConfig(strategy="grad_ratio"),
        max_steps=1,
    )
    batch = tiny_batch(model)
    torch.manual_seed(3)
    loss, components = trainer.multitask(batch, 0)
    coefficient = trainer.multitask.weighting.log_values()["coef/mqp"]
    rank_grad = _shared_grad(model, components["pairwise_hinge"])
    aux_grad = _shared_grad(model, coefficient * components["mqp"])
    assert aux_grad.norm() / rank_grad.norm() == pytest.approx(ratio, rel=1e-4)
    # the total's gradient is the sum of the two scaled gradients
    assert torch.allclose(_shared_grad(model, loss), rank_grad + aux_grad, atol=1e-6)


def test_gradient_statistics_are_logged(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    make_trainer(
        model, tmp_path, {"pairwise_hinge": 1.0, "mqp": 0.2}, max_steps=2, grad_stats_every=1
    ).train()
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    first = records[0]
    assert first["grad_norm/pairwise_hinge"] > 0 and first["grad_norm/mqp"] > 0
    assert -1.0 <= first["grad_cos/pairwise_hinge|mqp"] <= 1.0


def test_early_stopping_after_patience(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert)
    values = iter([0.5, 0.4, 0.3, 0.9, 0.9])
    objectives = {"pairwise_hinge": build_objective("pairwise_hinge")}
    batches = [tiny_batch(model)] * 2
    config = TrainingConfig(
        output_dir=str(tmp_path), progress=False, epochs=5, early_stopping_patience=2, log_every=1
    )
    trainer = Trainer(
        model,
        objectives,
        {"pairwise_hinge": ComponentSchedule()},
        FixedBatches(batches),
        config,
        validate=lambda m: {"nDCG@10": next(values)},
    )
    result = trainer.train()
    assert result.steps == 6  # epochs 1–3 validated (0.5, 0.4, 0.3): two without a new best → stop
    assert result.best_step == 2 and result.best_metric == 0.5


def test_identity_pooler_is_not_reset_on_reload(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert, pooler="identity")
    with torch.no_grad():
        model.backbone.base_model.pooler.dense.weight.mul_(0.5)  # "trained" away from the identity
    model.save_pretrained(tmp_path / "m")
    reloaded = CrossEncoder.from_pretrained(tmp_path / "m")
    assert reloaded.config.pooler == "keep"
    assert torch.equal(
        reloaded.backbone.base_model.pooler.dense.weight, model.backbone.base_model.pooler.dense.weight
    )


def test_grad_ratio_logs_its_own_gradient_statistics_without_a_second_probe(tiny_bert, tmp_path, monkeypatch):
    import auxir.training.multitask as multitask

    calls = []
    monkeypatch.setattr(multitask, "component_gradients", lambda *a: calls.append(1) or {})
    model = tiny_cross_encoder(tiny_bert)
    make_trainer(
        model,
        tmp_path,
        {"pairwise_hinge": 1.0, "mqp": 0.2},
        weighting=WeightingConfig(strategy="grad_ratio"),
        max_steps=2,
        grad_stats_every=1,
    ).train()
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert calls == [] and "grad_cos/pairwise_hinge|mqp" in records[0] and "coef/mqp" in records[0]
