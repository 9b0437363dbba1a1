"""The madrm family's MLM + aspect pre-training stage (Kong et al., KDD 2022, §7.1, eq. 7): off by default,
on in madral-pre, lowers the MLM loss, its aspect part is the fine-tuning objectives' value, and the MLM head
comes from the checkpoint or is tied to the word embeddings."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from auxir.families import get_family
from auxir.families.madrm_pretraining import TextBatch, mask_tokens, mlm_masker, pretrain, pretraining_losses
from auxir.models.aspect_encoder import (
    IGNORE,
    AspectEncoder,
    AspectEncoderConfig,
    PretrainingConfig,
    masked_lm_heads,
    masked_lm_loss,
)
from auxir.recipe import load_recipe

from .test_madrm_family import context, esci_recipe, tiny_esci  # noqa: F401  (tiny_esci: a fixture)


def test_pretraining_is_off_by_default_and_madral_pre_turns_it_on():
    for name in ("bibert", "madr", "madral"):
        assert load_recipe(name).architecture.pretraining == PretrainingConfig()
        assert PretrainingConfig().steps == 0
    pre, plain = load_recipe("madral-pre"), load_recipe("madral")
    get_family("madrm").check(pre)
    assert pre.architecture.pretraining.steps > 0 and pre.architecture.pretraining.aspect_weight == 1.0
    # Otherwise madral-pre is madral: the same architecture, objectives and training (but its folder).
    assert dataclasses.replace(pre.architecture, pretraining=PretrainingConfig()) == plain.architecture
    assert pre.objectives == plain.objectives
    assert dataclasses.replace(pre.training, output_dir=plain.training.output_dir) == plain.training
    override = load_recipe("madral", ["architecture.pretraining.steps=500"])
    assert override.architecture.pretraining.steps == 500


def test_bad_pretraining_values_are_refused_when_the_recipe_loads():
    with pytest.raises(ValueError, match=r"pretraining.mlm_probability: expected a number in \[0.0, 1.0\]"):
        load_recipe("madral", ["architecture.pretraining.mlm_probability=1.5"])
    with pytest.raises(ValueError, match=r"pretraining: unknown field\(s\) \['step'\]"):
        load_recipe("madral", ["architecture.pretraining={step: 3}"])
    with pytest.raises(
        ValueError, match=r"pretraining.texts: 'queries' is not one of \['both', 'documents'\]"
    ):
        load_recipe("madral", ["architecture.pretraining.texts=queries"])


def test_a_checkpoint_without_an_mlm_head_gets_one_tied_to_each_towers_embeddings(tiny_bert):
    model = AspectEncoder.from_pretrained(
        tiny_bert, AspectEncoderConfig(max_length=40, max_query_length=10, towers="separate")
    )
    heads = masked_lm_heads(model, tiny_bert)
    assert heads.tied and "cls.predictions.transform.dense.weight" in heads.missing
    assert set(heads.heads) == {"query", "document"}
    assert (
        heads.head("document").predictions.decoder.weight is model.encoder.embeddings.word_embeddings.weight
    )
    assert (
        heads.head("query").predictions.decoder.weight
        is model.query_encoder.embeddings.word_embeddings.weight
    )
    assert "mlm" not in json.dumps(sorted(model.state_dict()))  # the heads are never part of the model


def test_a_checkpoint_with_an_mlm_head_keeps_its_weights(tiny_bert, tmp_path):
    from transformers import BertForMaskedLM

    encoder = AspectEncoder.from_pretrained(
        tiny_bert, AspectEncoderConfig(max_length=40, max_query_length=10)
    )
    torch.manual_seed(3)
    mlm = BertForMaskedLM(encoder.encoder.config)
    mlm.save_pretrained(tmp_path, safe_serialization=True)
    encoder.tokenizer.save_pretrained(tmp_path)
    model = AspectEncoder.from_pretrained(tmp_path, AspectEncoderConfig(max_length=40, max_query_length=10))
    heads = masked_lm_heads(model, tmp_path)
    assert heads.missing == [] and list(heads.heads) == ["shared"]
    head = heads.head("document").predictions
    torch.testing.assert_close(head.transform.dense.weight, mlm.cls.predictions.transform.dense.weight)
    assert head.decoder.weight is model.encoder.embeddings.word_embeddings.weight


def _groups_as_texts(batch) -> list[TextBatch]:
    docs = {name: hot.flatten(0, 1) for name, hot in batch.doc_gold.items()}
    return [
        TextBatch("query", batch.query, batch.query_len, batch.query_gold, batch.query_present),
        TextBatch(
            "document",
            batch.docs.flatten(0, 1),
            batch.doc_len.flatten(),
            docs,
            batch.doc_present.flatten(0, 1),
        ),
    ]


def test_the_aspect_part_equals_the_fine_tuning_objectives_on_the_same_batch(tiny_bert, tiny_esci, tmp_path):  # noqa: F811
    from auxir.objectives import build_objective

    recipe = esci_recipe(tiny_bert, tiny_esci, tmp_path, "samples.num_negatives=1")
    ctx = context(recipe, tiny_esci, tmp_path)
    family = get_family("madrm")
    model = family.build_model(ctx).eval()
    heads = masked_lm_heads(model, tiny_bert)
    batch = family.batch_source(model, ctx).batch(0, 0)
    prediction, presence = torch.zeros(()), torch.zeros(())
    with torch.no_grad():
        for texts in _groups_as_texts(batch):
            unmasked = torch.full_like(texts.ids, IGNORE)
            losses = pretraining_losses(model, heads, texts, texts.ids, unmasked)
            assert losses["mlm"].item() == 0.0  # nothing masked, nothing predicted
            prediction, presence = (
                prediction + losses["aspect_prediction"],
                presence + losses["aspect_presence"],
            )
        expected_prediction = build_objective("aspect_prediction")(model, batch)
        expected_presence = build_objective("aspect_presence")(model, batch)
    assert prediction.item() > 0 and presence.item() > 0
    torch.testing.assert_close(prediction, expected_prediction, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(presence, expected_presence, rtol=1e-6, atol=1e-6)


def test_pretraining_lowers_the_mlm_loss_and_logs_each_term(tiny_bert, tiny_esci, tmp_path):  # noqa: F811
    recipe = esci_recipe(tiny_bert, tiny_esci, tmp_path)
    ctx = context(recipe, tiny_esci, tmp_path)
    family = get_family("madrm")
    model = family.build_model(ctx)  # no pre-training yet: it runs below, with heads the test keeps
    recipe.architecture.pretraining = PretrainingConfig(
        steps=60, batch_size=8, learning_rate=3e-3, log_every=20, mlm_probability=0.3
    )
    heads = masked_lm_heads(model, tiny_bert)
    held_out = _groups_as_texts(family.batch_source(model, ctx).batch(0, 0))[1]  # documents
    inputs, labels = mask_tokens(mlm_masker(model.tokenizer, 0.3, seed=7), held_out)
    again = mask_tokens(mlm_masker(model.tokenizer, 0.3, seed=7), held_out)
    assert torch.equal(inputs, again[0]) and torch.equal(labels, again[1])  # seeded: the same masks
    assert (labels != IGNORE).any() and ((labels == IGNORE) | (labels == held_out.ids)).all()

    def mlm_loss() -> float:
        model.eval()
        with torch.no_grad():
            encoding = model.encode_aspects(inputs, held_out.lengths, "document")
            return masked_lm_loss(heads.head("document"), encoding, labels).item()

    before = mlm_loss()
    summary = pretrain(model, ctx, heads)
    after = mlm_loss()
    assert after < before - 0.3, (before, after)
    assert summary["steps"] == 60 and summary["mlm_head"].startswith("new, decoder tied")
    assert summary["texts"] == {"document": 48, "query": 4}  # the corpus and the 4 training queries
    records = [json.loads(line) for line in (tmp_path / "pretrain_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [20, 40, 60]
    for record in records:
        for term in ("loss", "mlm", "aspect_prediction", "aspect_presence"):
            assert math.isfinite(record[term]) and record[term] >= 0
        # eq. 7 with aspect_weight 1: the loss is the sum of its terms (over both sides)
        total = record["mlm"] + record["aspect_prediction"] + record["aspect_presence"]
        assert record["loss"] == pytest.approx(total, rel=1e-5)
    assert records[-1]["mlm"] < records[0]["mlm"]


def test_madral_pre_runs_end_to_end_and_reports_the_stage(tiny_bert, tiny_esci, tmp_path):  # noqa: F811
    from auxir.experiment import run_experiment

    overrides = [
        "architecture.pretraining.steps=3",
        "architecture.pretraining.batch_size=4",
        "architecture.pretraining.texts=documents",
        "training.max_steps=2",
        "data.valid_fraction=0",
    ]
    recipe = load_recipe("madral-pre", _tiny(tiny_bert, tiny_esci, tmp_path, *overrides))
    run_experiment(recipe)
    facts = json.loads((tmp_path / "metrics.json").read_text())["family_facts"]
    assert facts["pretraining"]["steps"] == 3 and facts["pretraining"]["texts"] == {"document": 12}
    assert json.loads((tmp_path / "pretrain_log.jsonl").read_text().splitlines()[-1])["step"] == 3
    saved = AspectEncoder.from_pretrained(tmp_path / "model")
    assert saved.config.pretraining.steps == 3  # a record of how the model was made


def _tiny(tiny_bert, tiny_esci, out, *extra):  # noqa: F811  (arguments, not the fixture)
    from .test_experiment import tiny_overrides
    from .test_madrm_family import ESCI_LABELS

    return tiny_overrides(tiny_bert, tiny_esci, out, ESCI_LABELS, "architecture.aspects=3", *extra)
