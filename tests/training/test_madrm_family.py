"""The madrm family end to end on ESCI-style product data (category / brand / color metadata), its batches,
its recipes and its refusals."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from auxir.data.aspects import AspectGroupBatch
from auxir.families import Context, QuerySplit, get_family
from auxir.models.aspect_encoder import AspectEncoder, AspectEncoderConfig
from auxir.recipe import load_recipe
from auxir.training.distributed import DistEnv

from .conftest import TOPICS
from .test_experiment import tiny_overrides

BRANDS = ["acme", "globex", "initech"]
COLORS = ["red", "green", "blue", "white"]
ESCI_LABELS = "architecture.labels={fields: {category: metadata.category, brand: metadata.brand, color: metadata.color}}"


@pytest.fixture(scope="module")
def tiny_esci(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BEIR collection's 8 topics as product categories: 48 products with a brand and (mostly) one or
    two colors; 32 queries, some naming a brand or a color, half for training and half for testing."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("tiny-esci")
    docs, queries, train, test = [], [], [], []
    for t, (topic, words) in enumerate(TOPICS.items()):
        pool = words.split()
        for i in range(6):
            metadata = {"category": topic, "brand": BRANDS[(t + i) % 3]}
            if i != 5:  # one product of each category without a color
                metadata["color"] = [COLORS[i % 4]] + ([COLORS[(i + 1) % 4]] if i % 2 else [])
            text = " ".join(rng.choice(pool) for _ in range(10 + 2 * i))
            docs.append({"_id": f"{topic}-d{i}", "title": topic, "text": text, "metadata": metadata})
        for j in range(4):
            qid = f"{topic}-q{j}"
            metadata = {"category": topic, **({"brand": BRANDS[(t + j) % 3]} if j % 2 else {})}
            queries.append({"_id": qid, "text": " ".join(rng.sample(pool, 3)), "metadata": metadata})
            for i in range(2):
                (train if j < 2 else test).append((qid, f"{topic}-d{(j + i) % 6}", 1))
    (path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (path / "qrels").mkdir()
    for name, rows in (("train", train), ("test", test)):
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, d, r in rows]
        (path / "qrels" / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    return path


def esci_recipe(tiny_bert, tiny_esci, out, *extra):
    return load_recipe(
        "madral",
        tiny_overrides(tiny_bert, tiny_esci, out, ESCI_LABELS, "architecture.aspects=3", *extra),
    )


def context(recipe, tiny_esci, out, train=("cat-q0", "dog-q1", "bank-q0", "gene-q1")) -> Context:
    from auxir.data.dataset import load_dataset
    from auxir.experiment import first_stage_run

    ds = load_dataset(str(tiny_esci))
    qrels = [q for q in ds.qrels("train") if q.query_id in train]
    split = QuerySplit(list(train), [], ["cat-q2", "dog-q3"], qrels, ds.qrels("test"))
    return Context(recipe, ds, split, first_stage_run(ds, recipe, list(train)), DistEnv(), out)


def test_recipes_load_and_pass_the_familys_checks():
    family = get_family("madrm")
    for name, aspects, objectives in (
        ("bibert", 0, ["in_batch_softmax"]),
        ("madr", 3, ["in_batch_softmax"]),
        ("madral", 4, ["in_batch_softmax", "aspect_prediction", "aspect_presence"]),
    ):
        recipe = load_recipe(name)
        family.check(recipe)
        assert recipe.family == "madrm" and isinstance(recipe.architecture, AspectEncoderConfig)
        assert recipe.architecture.aspects == aspects and [o.name for o in recipe.objectives] == objectives
    assert load_recipe("madral").architecture.labels.mapping == "pubmedqa_mesh"


def test_batches_carry_each_texts_labels(tiny_bert, tiny_esci, tmp_path):
    recipe = esci_recipe(tiny_bert, tiny_esci, tmp_path, "samples.num_negatives=1")
    ctx = context(recipe, tiny_esci, tmp_path)
    family = get_family("madrm")
    model = family.build_model(ctx)
    vocabulary = model.vocabulary
    assert vocabulary.names == ("category", "brand", "color")
    assert sorted(vocabulary.values["category"]) == sorted(TOPICS)
    assert set(vocabulary.values["brand"]) == set(BRANDS) and set(vocabulary.values["color"]) == set(COLORS)
    source = family.batch_source(model, ctx)
    batch = source.batch(0, 0)
    assert isinstance(batch, AspectGroupBatch)
    for row, query_id in enumerate(batch.query_ids):
        topic, number = query_id.split("-q")
        gold = batch.query_gold["category"][row]
        assert gold.sum() == 1 and vocabulary.values["category"][int(gold.nonzero())] == topic
        has_brand = int(number) % 2 == 1
        assert batch.query_present[row].tolist() == [True, has_brand, False]  # queries name no color
        for column, doc_id in enumerate(batch.doc_ids[row]):
            doc = ctx.ds.docs[doc_id]
            colors = {
                vocabulary.values["color"][i]
                for i in batch.doc_gold["color"][row, column].nonzero().flatten()
            }
            assert colors == set(doc.metadata.get("color", []))
            assert batch.doc_present[row, column, 2].item() == bool(doc.metadata.get("color"))
    moved = batch.to("cpu")
    assert isinstance(moved, AspectGroupBatch) and moved.query_gold["brand"].dtype == torch.bool


ARCHITECTURES = {
    "madral": [],
    "mpbert": ["architecture.extraction=first_tokens", "architecture.other=cls"],
    "madral-separate-projected": ["architecture.towers=separate", "architecture.projection=16"],
    "mtbert": ["architecture.aspects=0", "architecture.pooling=cls"],
}


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
@pytest.mark.parametrize("name", ["aspect_prediction", "aspect_presence"])
def test_aspect_objectives_are_finite_non_negative_and_reach_the_encoder(
    tiny_bert, tiny_esci, tmp_path, name, architecture
):
    from auxir.objectives import build_objective

    recipe = esci_recipe(tiny_bert, tiny_esci, tmp_path, *ARCHITECTURES[architecture])
    ctx = context(recipe, tiny_esci, tmp_path)
    family = get_family("madrm")
    model = family.build_model(ctx)
    batch = family.batch_source(model, ctx).batch(0, 0)
    objective = build_objective(name)
    if name == "aspect_presence" and architecture == "mtbert":
        with pytest.raises(ValueError, match=r"'aspect_presence': expected a presence head"):
            objective(model, batch)
        return
    loss = objective(model, batch)
    assert math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    for encoder in (model.encoder, model.query_encoder or model.encoder):
        assert encoder.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert set(batch.encodings) == {"query", "document"}  # encoded once, kept for the other objective


def test_experiment_trains_on_esci_style_labels_and_retrieves(tiny_bert, tiny_esci, tmp_path):
    from auxir.data.dataset import load_dataset
    from auxir.data.trec import read_run
    from auxir.experiment import run_experiment

    recipe = esci_recipe(
        tiny_bert, tiny_esci, tmp_path, "data.valid_fraction=0.25", "architecture.retrieve_k=30"
    )
    result = run_experiment(recipe)
    ranked = read_run(tmp_path / "reranked.trec")
    qrels = load_dataset(str(tiny_esci)).qrels("test")
    assert {s.query_id for s in ranked} == {q.query_id for q in qrels}
    assert {sum(1 for s in ranked if s.query_id == q) for q in {s.query_id for s in ranked}} == {30}
    assert 0.0 <= result.reranked["nDCG@10"] <= 1.0
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    for component in ("in_batch_softmax", "aspect_prediction", "aspect_presence"):
        values = [r[component] for r in log if component in r]
        assert values and all(math.isfinite(v) and v >= 0 for v in values)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["family"] == "madrm" and summary["train_steps"] == 4
    facts = summary["family_facts"]
    assert facts["indexed_documents"] == 48
    aspects = facts["aspects"]
    assert aspects["slots"] == ["category", "brand", "color", "other"]
    assert aspects["query"]["texts"] == 16 and aspects["query"]["labelled"] == {
        "category": 16,
        "brand": 8,
        "color": 0,
    }
    assert aspects["query"]["accuracy@1"]["color"] is None  # no test query names a color
    for side in ("query", "document"):
        assert sum(aspects[side]["mean_weight"].values()) == pytest.approx(1.0, abs=1e-3)
        for value in (*aspects[side]["accuracy@1"].values(), *aspects[side]["auc"].values()):
            assert value is None or 0.0 <= value <= 1.0
    best = AspectEncoder.from_pretrained(tmp_path / "best")
    assert best.vocabulary.names == ("category", "brand", "color")


def test_madr_without_labels_reranks_with_separate_towers(tiny_bert, tiny_esci, tmp_path):
    from auxir.experiment import run_experiment

    overrides = tiny_overrides(
        tiny_bert,
        tiny_esci,
        tmp_path,
        "data.valid_fraction=0",
        "architecture.evaluate=rerank",
        "architecture.towers=separate",
        "architecture.fusion=cls_gating",
        "training.max_steps=2",
    )
    result = run_experiment(load_recipe("madr", overrides))
    assert 0.0 <= result.reranked["nDCG@10"] <= 1.0
    facts = json.loads((tmp_path / "metrics.json").read_text())["family_facts"]
    assert facts["aspects"]["slots"] == ["aspect_1", "aspect_2", "aspect_3", "other"]
    assert "accuracy@1" not in facts["aspects"]["query"]
    assert (tmp_path / "model" / "query" / "config.json").exists()


@pytest.mark.parametrize(
    ("recipe", "overrides", "message"),
    [
        (
            "madr",
            ["objectives.0.name=aspect_prediction", "objectives.0.params={}"],
            r"learn aspect labels: expected architecture.labels.fields or architecture.labels.mapping",
        ),
        (
            "madral",
            ["architecture.fusion=weighted_sum"],
            r"'aspect_presence' trains the presence head of eq. 5: expected architecture.fusion 'presence' with aspects > 0, found fusion 'weighted_sum'",
        ),
        (
            "madral",
            ["architecture.aspects=3"],
            r"architecture.aspects: the labels name 4 aspects \['population', 'sex', 'age_group', 'study_design'\], so expected 4",
        ),
        (
            "madral",
            ["architecture.labels.mapping=pubmed"],
            r"aspect mapping 'pubmed': expected a YAML file or one of the shipped mappings",
        ),
    ],
)
def test_bad_recipes_are_refused_before_any_data_is_read(recipe, overrides, message):
    loaded = load_recipe(recipe, overrides)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        get_family("madrm").check(loaded)


def test_bad_architecture_values_are_refused_when_the_recipe_loads():
    with pytest.raises(
        ValueError,
        match=r"architecture.fusion: 'gate' is not one of \['weighted_sum', 'presence', 'cls_gating'\]",
    ):
        load_recipe("madral", ["architecture.fusion=gate"])
    with pytest.raises(
        ValueError,
        match=r"madral.architecture.labels: unknown field\(s\) \['feilds'\]; valid fields: \['fields', 'mapping', 'min_count'\]",
    ):
        load_recipe("madral", ["architecture.labels={feilds: {}}"])


def test_aspect_objectives_refuse_a_batch_without_labels(tiny_bert):
    from auxir.objectives import build_objective

    from .helpers import tiny_batch

    model = AspectEncoder.from_pretrained(tiny_bert, AspectEncoderConfig(max_length=40, max_query_length=10))
    with pytest.raises(
        ValueError, match=r"'aspect_prediction': expected an AspectGroupBatch .* found GroupBatch"
    ):
        build_objective("aspect_prediction")(model, tiny_batch(model))


@pytest.mark.parametrize("hard_negatives", [True, False])
def test_in_batch_softmax_and_the_aspect_objectives_share_one_encoding(
    tiny_bert, tiny_esci, tmp_path, hard_negatives
):
    from dataclasses import fields

    from auxir.data.collate import GroupBatch
    from auxir.objectives import build_objective

    recipe = esci_recipe(tiny_bert, tiny_esci, tmp_path)
    ctx = context(recipe, tiny_esci, tmp_path)
    family = get_family("madrm")
    model = family.build_model(ctx).eval()  # no dropout: encodings are comparable across calls
    source = family.batch_source(model, ctx)
    objectives = {
        "in_batch_softmax": build_objective("in_batch_softmax", {"hard_negatives": hard_negatives}),
        "aspect_prediction": build_objective("aspect_prediction"),
        "aspect_presence": build_objective("aspect_presence"),
    }
    calls = []
    hook = model.encoder.register_forward_hook(lambda module, inputs, output: calls.append(module))
    try:
        with torch.no_grad():
            batch = source.batch(0, 0)
            shared = {name: objective(model, batch) for name, objective in objectives.items()}
            assert len(calls) == 2  # the queries and the documents, once each for the three objectives
            # Each objective alone on a fresh copy of the batch, and in-batch softmax on the plain groups.
            alone = {name: objective(model, source.batch(0, 0)) for name, objective in objectives.items()}
            plain = GroupBatch(**{f.name: getattr(batch, f.name) for f in fields(GroupBatch)})
            unshared = objectives["in_batch_softmax"](model, plain)
    finally:
        hook.remove()
    for name in objectives:
        torch.testing.assert_close(shared[name], alone[name], rtol=0, atol=0)
    torch.testing.assert_close(shared["in_batch_softmax"], unshared, rtol=1e-6, atol=1e-6)
    assert all(v.item() > 0 for v in shared.values())
