"""The QBD document-representation objective: the triplet loss by hand, texts encoded alone ([CLS]),
gradients, training beside pairwise_softmax, a bi-encoder, a passage scorer, and errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from auxir.data.collate import GroupBatch
from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig
from auxir.objectives import build_objective
from auxir.objectives.doc_representation import encode_alone, triplet_loss
from auxir.recipe import load_recipe

from .helpers import DOCS, GROUPS, QUERIES, tiny_batch, tiny_cross_encoder
from .test_experiment import tiny_overrides


# ---- the loss against a hand computation -----------------------------------------------------------
def test_euclidean_triplet_loss_by_hand_with_margin_and_clipping():
    query = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    positive = torch.tensor([[3.0, 4.0], [1.0, 2.0]])  # distances 5 and 1
    negatives = torch.tensor([[[0.0, 1.0], [6.0, 8.0]], [[4.0, 5.0], [1.0, 1.5]]])  # 1, 10 ; 5, 0.5
    # group 1: relu(5 − 1 + m), relu(5 − 10 + m) ; group 2: relu(1 − 5 + m), relu(1 − 0.5 + m)
    assert triplet_loss(query, positive, negatives, "euclidean", 1.0).item() == pytest.approx(
        (5 + 0 + 0 + 1.5) / 4, abs=1e-5
    )
    assert triplet_loss(query, positive, negatives, "euclidean", 0.25).item() == pytest.approx(
        (4.25 + 0 + 0 + 0.75) / 4, abs=1e-5
    )
    assert triplet_loss(query, positive, negatives, "euclidean", 0.0).item() == pytest.approx(
        (4 + 0 + 0 + 0.5) / 4, abs=1e-5
    )


def test_cosine_triplet_loss_by_hand():
    query = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[1.0, 1.0]])  # 1 − cos = 1 − 1/√2
    negatives = torch.tensor([[[0.0, 3.0], [-2.0, 0.0], [2.0, 0.0]]])  # 1 − cos = 1, 2, 0
    d_pos = 1 - 1 / math.sqrt(2)
    expected = (max(0.0, d_pos - 1 + 1) + max(0.0, d_pos - 2 + 1) + max(0.0, d_pos - 0 + 1)) / 3
    assert triplet_loss(query, positive, negatives, "cosine", 1.0).item() == pytest.approx(expected, abs=1e-6)
    expected = (0.0 + 0.0 + (d_pos + 0.5)) / 3  # margin 0.5 clips the first two
    assert triplet_loss(query, positive, negatives, "cosine", 0.5).item() == pytest.approx(expected, abs=1e-6)


def relu(x: float) -> float:
    return max(0.0, x)


class TokenVectors:
    """A model with ``encode_ids`` whose vector of a text is its first two token ids; records the sides."""

    def __init__(self):
        self.sides: list[tuple[str, int]] = []

    def encode_ids(self, ids, lengths, side):
        self.sides.append((side, ids.shape[0]))
        return ids[:, :2].float()


def vector_batch() -> GroupBatch:
    docs = torch.tensor([[[3, 4], [0, 1], [6, 8]], [[1, 2], [4, 5], [1, 1]]])  # (B=2, G=3, L=2)
    return GroupBatch(
        query=torch.tensor([[0, 0], [1, 1]]),
        query_len=torch.tensor([2, 2]),
        docs=docs,
        doc_len=torch.full((2, 3), 2),
        labels=torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        query_ids=["q1", "q2"],
        doc_ids=[["p1", "n1", "n2"], ["p2", "n3", "n4"]],
    )


@pytest.mark.parametrize(
    ("negatives", "rows", "expected"),
    [
        # group 1 distances: positive 5, negatives 1 and 10; group 2: positive 1, negatives 5 and 0
        ("all", 6, (relu(5 - 1 + 1) + relu(5 - 10 + 1) + relu(1 - 5 + 1) + relu(1 - 0 + 1)) / 4),
        ("first", 4, (relu(5 - 1 + 1) + relu(1 - 5 + 1)) / 2),
    ],
)
def test_objective_makes_triplets_of_the_groups_own_documents(negatives, rows, expected):
    model = TokenVectors()
    loss = build_objective("doc_representation", {"negatives": negatives})(model, vector_batch())
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    # queries through the query side, and only the documents the triplets use through the document side
    assert model.sides == [("query", 2), ("document", rows)]


# ---- the cross-encoder: each text encoded alone, last-layer [CLS] -----------------------------------
def alone(model, text: str, pooling: str = "cls") -> torch.Tensor:
    """The text as the tokenizer frames it alone, through the backbone's encoder: [CLS] or the mean."""
    encoded = model.tokenizer(text, return_tensors="pt")
    hidden = model.backbone.base_model(**encoded).last_hidden_state[0]  # (W, H)
    return hidden[0] if pooling == "cls" else hidden.mean(0)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_each_text_is_encoded_alone_as_a_direct_backbone_call(pooling, tiny_bert):
    model = tiny_cross_encoder(tiny_bert).eval()
    batch = tiny_batch(model)
    with torch.no_grad():
        rows = batch.docs.flatten(0, 1)  # padded wider than most texts: padding must not matter
        got = encode_alone(model, rows, batch.doc_len.flatten(), pooling)
        order = [d for _, docs, _ in GROUPS for d in docs]
        want = torch.stack([alone(model, DOCS[d], pooling) for d in order])
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_cross_encoder_loss_is_the_triplet_loss_of_directly_encoded_texts(distance, tiny_bert):
    model = tiny_cross_encoder(tiny_bert).eval()
    batch = tiny_batch(model)
    with torch.no_grad():
        loss = build_objective("doc_representation", {"distance": distance, "margin": 1.0})(model, batch)
        terms = []
        for query_id, (positive, negative), _ in GROUPS:
            q, p, n = (alone(model, text) for text in (QUERIES[query_id], DOCS[positive], DOCS[negative]))
            if distance == "euclidean":
                gap = (q - p).norm() - (q - n).norm()
            else:
                gap = torch.cosine_similarity(q, n, dim=0) - torch.cosine_similarity(q, p, dim=0)
            terms.append(torch.relu(gap + 1.0))
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), abs=1e-5)


def test_gradients_reach_the_encoder_and_not_the_score_head(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    loss = build_objective("doc_representation")(model, tiny_batch(model))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() >= 0
    loss.backward()
    for layer in model.backbone.bert.encoder.layer:
        assert layer.attention.self.query.weight.grad.abs().sum() > 0
    assert model.backbone.classifier.weight.grad is None  # texts alone are never scored


def test_a_passage_scorer_encodes_the_first_passage_of_each_document(tiny_bert):
    params = {"aggregation": "max", "passage_length": 4, "stride": 3}
    model = tiny_cross_encoder(tiny_bert, scorer="parade", scorer_params=params).eval()
    batch = tiny_batch(model)
    first = replace(batch, docs=batch.docs[..., :4], doc_len=batch.doc_len.clamp(max=4))
    objective = build_objective("doc_representation")
    with torch.no_grad():
        assert objective(model, batch).item() == pytest.approx(objective(model, first).item(), abs=1e-6)


# ---- training beside the ranking loss; the recipe --------------------------------------------------
def test_recipe_is_pairwise_softmax_plus_doc_representation_with_long_queries():
    recipe = load_recipe("qbd-multitask")
    assert [(o.name, o.weight) for o in recipe.objectives] == [
        ("pairwise_softmax", 1.0),
        ("doc_representation", 1.0),
    ]
    assert recipe.objectives[1].params == {
        "distance": "euclidean",
        "margin": 1.0,
        "pooling": "cls",
        "negatives": "all",
    }
    assert recipe.architecture.max_query_length == 256 and recipe.architecture.max_length == 512
    assert recipe.data.dataset == "../shared/data/fire2017-legal"


def test_training_steps_on_tiny_beir_log_both_components(tiny_bert, tiny_beir, tmp_path):
    from auxir.experiment import run_experiment

    overrides = tiny_overrides(
        tiny_bert, tiny_beir, tmp_path, "data.valid_fraction=0", "samples.num_negatives=2"
    )
    result = run_experiment(load_recipe("qbd-multitask", overrides))
    assert result.train.steps == 4
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "doc_representation" in r]
    assert len(steps) >= 1
    for record in steps:
        for name in ("pairwise_softmax", "doc_representation", "loss"):
            assert math.isfinite(record[name]) and record[name] >= 0
        total = record["pairwise_softmax"] + record["doc_representation"]
        assert record["loss"] == pytest.approx(total, rel=1e-4)


# ---- a bi-encoder ------------------------------------------------------------------------------------
def test_bi_encoder_gives_its_own_vectors_and_learns(tiny_bert):
    torch.manual_seed(0)
    model = BiEncoder.from_pretrained(tiny_bert, BiEncoderConfig(max_length=40, max_query_length=10))
    batch = tiny_batch(model)
    loss = build_objective("doc_representation", {"distance": "cosine"})(model, batch)
    with torch.no_grad():
        q = model.encode_ids(batch.query, batch.query_len, "query")
        d = model.encode_ids(batch.docs.flatten(0, 1), batch.doc_len.flatten(), "document").view(3, 2, -1)
        expected = torch.relu(
            (1 - torch.cosine_similarity(q, d[:, 0])) - (1 - torch.cosine_similarity(q, d[:, 1])) + 1
        )
    assert loss.item() == pytest.approx(expected.mean().item(), abs=1e-5)
    loss.backward()
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


# ---- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"distance": "manhattan"}, r"distance must be one of \['euclidean', 'cosine'\], found 'manhattan'"),
        ({"pooling": "max"}, r"pooling must be one of \['cls', 'mean'\], found 'max'"),
        ({"negatives": "some"}, r"negatives must be one of \['all', 'first'\], found 'some'"),
        ({"margin": -1.0}, r"margin must be a number >= 0, found -1.0"),
        ({"margin": "1"}, r"margin must be a number >= 0, found '1'"),
        ({"margin": True}, r"margin must be a number >= 0, found True"),
        ({"p": 2}, r"no parameter\(s\) \['p'\]; valid: \['distance', 'margin', 'negatives', 'pooling'\]"),
    ],
)
def test_bad_params_are_refused_with_what_was_expected(params, message):
    with pytest.raises(ValueError, match=message):
        build_objective("doc_representation", params)


def test_groups_without_a_negative_are_refused(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    single = replace(batch, docs=batch.docs[:, :1], doc_len=batch.doc_len[:, :1], labels=batch.labels[:, :1])
    with pytest.raises(ValueError, match="at least one negative .*found groups of 1"):
        build_objective("doc_representation")(model, single)


def test_a_model_that_cannot_encode_a_text_alone_is_named():
    with pytest.raises(
        ValueError, match="expected a CrossEncoder .* or a model with encode_ids, found object"
    ):
        build_objective("doc_representation")(object(), vector_batch())


def test_a_batch_without_groups_is_named():
    with pytest.raises(ValueError, match="expected a GroupBatch .*found dict"):
        build_objective("doc_representation")(TokenVectors(), {"doc_emb": None})
