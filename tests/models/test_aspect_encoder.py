"""AspectEncoder (MADRM): extraction masks [CLS], fusion weights, aspect losses by hand, persistence, labels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from auxir.data.aspects import (
    AspectLabeler,
    AspectLabelsConfig,
    AspectVocabulary,
    aspect_accuracy_at_1,
    aspect_auc,
    load_term_mapping,
)
from auxir.models.aspect_encoder import AspectEncoder, AspectEncoderConfig, AspectNetwork
from auxir.objectives.aspects import aspect_prediction_loss, aspect_presence_loss

H = 8


def network(**settings) -> AspectNetwork:
    torch.manual_seed(0)
    return AspectNetwork(H, AspectEncoderConfig(**settings), init_range=0.5)


def inputs(n: int = 3, width: int = 7, lengths=(5, 3, 1)):
    """Hidden states of ``[CLS] text [SEP] pad...``: text lengths ``lengths``, the text starting at 1."""
    torch.manual_seed(1)
    hidden = torch.randn(n, width, H)
    text_len = torch.tensor(lengths)
    mask = (torch.arange(width) < (text_len + 2).unsqueeze(1)).long()  # [CLS] + text + [SEP]
    return hidden, mask, text_len


# ---- the Aspect Extraction Network ------------------------------------------------------------------
def test_extraction_shapes_and_attention_never_reaches_cls_or_padding():
    net = network(aspects=3, other="learned")
    hidden, mask, text_len = inputs()
    slots, weights, presence, attention = net(hidden, mask, text_len, 1)
    assert slots.shape == (3, 4, H) and weights.shape == (3, 4) and presence.shape == (3, 4)
    assert attention.shape == (3, 4, 7)  # 3 aspect queries + the learned OTHER, over every position
    assert torch.all(attention[:, :, 0] == 0)  # [CLS]
    assert torch.all(attention * (1 - mask).unsqueeze(1) == 0)  # padding
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 4))


def test_changing_cls_leaves_the_aspect_vectors_unchanged_with_a_learned_other():
    net = network(aspects=3, other="learned", fusion="weighted_sum")
    hidden, mask, text_len = inputs()
    changed = hidden.clone()
    changed[:, 0] = torch.randn(3, H) * 10  # [CLS]'s output, hence its key and value
    with torch.no_grad():
        before, after = net(hidden, mask, text_len, 1)[0], net(changed, mask, text_len, 1)[0]
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    # With OTHER = [CLS] only that slot changes: the aspects still never read [CLS].
    net = network(aspects=3, other="cls", fusion="weighted_sum")
    with torch.no_grad():
        before, after = net(hidden, mask, text_len, 1)[0], net(changed, mask, text_len, 1)[0]
    torch.testing.assert_close(before[:, :3], after[:, :3], rtol=0, atol=0)
    assert not torch.allclose(before[:, 3], after[:, 3])


def test_extraction_is_eq_1_and_2_by_hand():
    net = network(aspects=2, other="none", fusion="weighted_sum")
    hidden, mask, text_len = inputs(n=1, width=5, lengths=(3,))
    with torch.no_grad():
        slots = net(hidden, mask, text_len, 1)[0][0]  # (2, H)
        q = net.aspect_queries @ net.w_q.weight.T  # (2, H)
        k, v = hidden[0] @ net.w_k.weight.T, hidden[0] @ net.w_v.weight.T  # (5, H)
        scores = q @ k.T / math.sqrt(H)
        scores[:, 0] = -math.inf  # [CLS]; positions 1..4 are the text and [SEP]
        expected = scores.softmax(-1) @ v
    torch.testing.assert_close(slots, expected)


def test_first_token_other_averages_the_first_text_tokens():
    net = network(aspects=1, other="first_tokens", other_tokens=2, fusion="weighted_sum")
    hidden, mask, text_len = inputs()
    with torch.no_grad():
        slots = net(hidden, mask, text_len, 1)[0]
    torch.testing.assert_close(slots[0, 1], hidden[0, 1:3].mean(0))
    torch.testing.assert_close(slots[2, 1], hidden[2, 1])  # a one-token text: that token alone


# ---- the Aspect Fusion Networks -----------------------------------------------------------------------
@pytest.mark.parametrize("fusion", ["weighted_sum", "presence", "cls_gating"])
@pytest.mark.parametrize(
    ("extraction", "other"),
    [("attention", "learned"), ("attention", "cls"), ("first_tokens", "first_tokens")],
)
def test_every_fusion_networks_weights_sum_to_one(fusion, extraction, other):
    net = network(aspects=3, fusion=fusion, extraction=extraction, other=other)
    hidden, mask, text_len = inputs()
    weights = net(hidden, mask, text_len, 1)[1]
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))


def test_mpbert_leaves_out_the_tokens_a_short_text_lacks():
    net = network(aspects=3, extraction="first_tokens", other="cls", fusion="weighted_sum")
    hidden, mask, text_len = inputs()  # text lengths 5, 3, 1
    slots, weights, _, attention = net(hidden, mask, text_len, 1)
    assert attention is None
    torch.testing.assert_close(slots[0, :3], hidden[0, 1:4])
    assert weights[2, 1] == 0 and weights[2, 2] == 0 and weights[2, 0] > 0  # only one text token
    torch.testing.assert_close(weights[0], torch.full((4,), 0.25))


def test_presence_weights_are_l1_normalised_presence_times_gamma():
    net = network(aspects=2, other="learned", fusion="presence")
    with torch.no_grad():
        net.gamma.copy_(torch.tensor([0.0, math.log(2.0), math.log(3.0)]))  # softmax: 1/6, 2/6, 3/6
    hidden, mask, text_len = inputs()
    with torch.no_grad():
        slots, weights, logits, _ = net(hidden, mask, text_len, 1)
    presence = torch.sigmoid((slots * net.presence_weight).sum(-1) + net.presence_bias)
    raw = presence * torch.tensor([1.0, 2.0, 3.0]) / 6
    torch.testing.assert_close(logits.sigmoid(), presence)
    torch.testing.assert_close(weights, raw / raw.sum(-1, keepdim=True))


def test_a_presence_weight_is_zero_when_the_head_says_absent():
    net = network(aspects=3, other="learned", fusion="presence")
    with torch.no_grad():
        net.presence_bias[1] = -1e4  # aspect 2 "absent" in every text
        hidden, mask, text_len = inputs()
        slots, weights, _, _ = net(hidden, mask, text_len, 1)
    assert torch.all(weights[:, 1] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[:, [0, 2, 3]] > 0)


def test_the_text_vector_is_the_weighted_sum_of_the_aspect_vectors(tiny_bert):
    model = tiny_aspect_encoder(tiny_bert, similarity="dot", projection=6)
    ids, lengths = token_ids(model, ["cat kitten purr", "bank loan"])
    with torch.no_grad():
        encoding = model.encode_aspects(ids, lengths, "query")
    assert encoding.slots.shape == (2, 4, 6) and encoding.vectors.shape == (2, 6)
    by_hand = (encoding.weights.unsqueeze(-1) * encoding.slots).sum(1)
    torch.testing.assert_close(encoding.vectors, by_hand)
    torch.testing.assert_close(model.encode_ids(ids, lengths, "query"), by_hand)
    cosine = tiny_aspect_encoder(tiny_bert, projection=6)
    with torch.no_grad():
        torch.testing.assert_close(
            cosine.encode_ids(ids, lengths, "query"), torch.nn.functional.normalize(by_hand, dim=-1)
        )


# ---- aspect learning: eq. 3 and eq. 6 by hand ------------------------------------------------------------
def test_aspect_prediction_loss_averages_over_annotations_and_skips_unlabelled_texts():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0], [5.0, -1.0, 2.0]])
    gold = torch.tensor([[True, True, False], [False, False, True], [False, False, False]])
    log_p = torch.log_softmax(logits, -1)
    text1 = -(log_p[0, 0] + log_p[0, 1]) / 2  # two annotations: their mean
    text2 = -log_p[1, 2]
    expected = (text1 + text2) / 2  # text 3 has no annotation: skipped
    assert aspect_prediction_loss(logits, gold).item() == pytest.approx(expected.item(), abs=1e-6)
    assert aspect_prediction_loss(logits, torch.zeros_like(gold)).item() == 0.0


def test_aspect_presence_loss_is_bce_summed_over_aspects():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    present = torch.tensor([[True, False], [False, True]])
    p = torch.sigmoid(logits)
    expected = (
        -(torch.log(p[0, 0]) + torch.log(1 - p[0, 1]) + torch.log(1 - p[1, 0]) + torch.log(p[1, 1])) / 2
    )
    assert aspect_presence_loss(logits, present).item() == pytest.approx(expected.item(), abs=1e-6)


# ---- metrics --------------------------------------------------------------------------------------------
def test_accuracy_at_1_and_auc_by_hand():
    probabilities = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    gold = np.array([[True, False, False], [True, False, True], [False, False, False], [True, True, True]])
    # Texts 1 and 2 are labelled (3 has no label, 4 has every value: it counts for accuracy, not AUC).
    assert aspect_accuracy_at_1(probabilities, gold) == pytest.approx(2 / 3)  # text 2's top (0.6) is not gold
    # AUC: text 1: 0.5 beats 0.3 and 0.2 -> 1; text 2: positives 0.1, 0.3 vs the negative 0.6 -> 0
    assert aspect_auc(probabilities, gold) == pytest.approx(0.5)
    ties = np.array([[0.5, 0.5]])
    assert aspect_auc(ties, np.array([[True, False]])) == pytest.approx(0.5)
    assert aspect_accuracy_at_1(probabilities, np.zeros_like(gold)) is None


# ---- labels ---------------------------------------------------------------------------------------------
def test_fields_give_labels_and_the_vocabulary_orders_values_by_frequency():
    labeler = AspectLabeler(AspectLabelsConfig(fields={"brand": "metadata.brand", "color": "metadata.color"}))
    texts = [
        labeler.labels({"brand": "Nike", "color": ["white", "black"]}),
        labeler.labels({"brand": " Nike ", "color": "white"}),
        labeler.labels({"brand": "Adidas"}),
        labeler.labels({}),
    ]
    assert texts[0] == {"brand": ("Nike",), "color": ("white", "black")}
    assert texts[3] == {"brand": (), "color": ()}
    vocabulary = AspectVocabulary.build(labeler, texts)
    assert vocabulary.values == {"brand": ("Nike", "Adidas"), "color": ("white", "black")}
    encoded = vocabulary.encode({"brand": ("Puma",), "color": ("black", "white")})
    assert encoded.values == ((), (1, 0)) and encoded.present == (True, True)  # Puma: present, no class
    gold, present = vocabulary.multi_hot([encoded, vocabulary.encode(texts[3])])
    assert gold["color"].tolist() == [[True, True], [False, False]]
    assert present.tolist() == [[True, True], [False, False]]
    rare = AspectLabeler(AspectLabelsConfig(fields={"brand": "metadata.brand"}, min_count=2))
    assert AspectVocabulary.build(rare, texts).values == {"brand": ("Nike",)}


def test_the_pubmedqa_mesh_mapping_gives_multi_label_aspects():
    mapping = load_term_mapping("pubmedqa_mesh")
    assert mapping.version == "1" and mapping.field == "metadata.mesh"
    assert list(mapping.aspects) == ["population", "sex", "age_group", "study_design"]
    labeler = AspectLabeler(AspectLabelsConfig(mapping="pubmedqa_mesh"))
    mesh = ["Adult", "Aged, 80 and over", "Female", "Humans", "Male", "Retrospective Studies", "Young Adult"]
    assert labeler.labels({"mesh": mesh}) == {
        "population": ("humans",),
        "sex": ("female", "male"),
        "age_group": ("adult", "aged"),
        "study_design": ("retrospective",),
    }
    assert AspectVocabulary.build(labeler, []).values["sex"] == ("female", "male")


def test_pubmedqa_mesh_coverage(shared_data):
    """How many PubMedQA questions and abstracts get at least one value of each aspect (pinned)."""
    folder = shared_data / "pubmedqa"
    if not folder.is_dir():
        pytest.skip(f"real data not available: {folder} does not exist")
    from auxir.data.dataset import load_dataset

    ds = load_dataset(str(folder))
    labeler = AspectLabeler(AspectLabelsConfig(mapping="pubmedqa_mesh"))
    for side, records in (("queries", list(ds.queries.values())), ("documents", list(ds.docs))):
        counts = dict.fromkeys(labeler.names, 0)
        for record in records:
            for aspect, values in labeler.labels(record.metadata).items():
                counts[aspect] += bool(values)
        assert len(records) == 1000
        assert counts == {"population": 991, "sex": 844, "age_group": 819, "study_design": 661}, side
    counts = dict.fromkeys(labeler.names, 0)
    for query_id in ds.queries_for("test"):
        for aspect, values in labeler.labels(ds.queries[query_id].metadata).items():
            counts[aspect] += bool(values)
    assert counts == {"population": 494, "sex": 418, "age_group": 402, "study_design": 346}  # of 500


# ---- the model: persistence, FAISS, errors ---------------------------------------------------------------
VOCABULARY = AspectVocabulary({"topic": ("cat", "bank", "gene"), "size": ("small", "large")})
LABELS = AspectLabelsConfig(fields={"topic": "metadata.topic", "size": "metadata.size"})


SHORT = {"max_length": 40, "max_query_length": 10}  # within the tiny BERT's 128 positions


def tiny_aspect_encoder(path, vocabulary=None, **settings) -> AspectEncoder:
    torch.manual_seed(0)
    values = {**SHORT, "aspects": 3, **settings}
    if vocabulary is not None:
        values.update(labels=LABELS, aspects=settings.get("aspects", 2))
    return AspectEncoder.from_pretrained(path, AspectEncoderConfig(**values), vocabulary)


def token_ids(model, texts, side="query"):
    from auxir.data.token_cache import pad_stack

    ids, lengths = pad_stack(model.tokenize(texts, side), model.template.pad_id)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


TEXTS = ["cat kitten purr", "bank loan interest rate credit", "gene", "star planet orbit light space moon"]


@pytest.mark.parametrize(
    "settings",
    [
        {"towers": "separate", "fusion": "cls_gating", "projection": 5},
        {"aspects": 0, "pooling": "cls"},  # MtBERT
        {"extraction": "first_tokens", "other": "cls", "fusion": "weighted_sum"},  # MpBERT
    ],
)
def test_save_and_reload_give_identical_vectors_and_predictions(tiny_bert, tmp_path, settings):
    model = tiny_aspect_encoder(tiny_bert, VOCABULARY, **settings)
    with torch.no_grad():  # move every new parameter off its initial value
        for name, p in model.named_parameters():
            if name in model.new_parameter_names():
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "auxir.json").read_text())["format"] == "auxir-aspect-encoder"
    again = AspectEncoder.from_pretrained(tmp_path / "saved")
    assert again.config == model.config and again.vocabulary == model.vocabulary
    for side in ("query", "document"):
        ids = model.tokenize(TEXTS, side)
        before, after = model.predict_tokens(ids, side), again.predict_tokens(ids, side)
        np.testing.assert_array_equal(before.vectors, after.vectors)
        np.testing.assert_array_equal(before.weights, after.weights)
        for name in VOCABULARY.names:
            np.testing.assert_array_equal(before.probabilities[name], after.probabilities[name])
            np.testing.assert_allclose(before.probabilities[name].sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="expected no config or vocabulary"):
        AspectEncoder.from_pretrained(tmp_path / "saved", model.config)


def test_the_fused_vector_round_trips_through_faiss(tiny_bert):
    from auxir.families.bi_encoder import build_index

    model = tiny_aspect_encoder(tiny_bert, projection=6)
    vectors = model.encode(TEXTS, "document")
    assert vectors.shape == (4, 6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    index = build_index(vectors, ["d1", "d2", "d3", "d4"], model.config)
    run = index.search(vectors, ["q1", "q2", "q3", "q4"], k=1)
    assert [s.doc_id for s in run] == ["d1", "d2", "d3", "d4"]
    assert [s.score for s in run] == pytest.approx([1.0] * 4, abs=1e-5)


def test_score_and_new_parameters(tiny_bert):
    model = tiny_aspect_encoder(tiny_bert, VOCABULARY)
    q_ids, q_len = token_ids(model, TEXTS[:2], "query")
    d_ids, d_len = token_ids(model, TEXTS[2:], "document")
    with torch.no_grad():
        scores = model.score(q_ids, q_len, d_ids, d_len)
        q, d = model.encode_ids(q_ids, q_len, "query"), model.encode_ids(d_ids, d_len, "document")
    torch.testing.assert_close(scores, 20.0 * (q * d).sum(-1))
    names = model.new_parameter_names()
    assert "networks.shared.aspect_queries" in names and "predictors.topic.weight" in names
    assert not any(n.startswith("encoder.") for n in names)
    assert model.slot_names == ("topic", "size", "other")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"fusion": "mean"},
            r"AspectEncoderConfig.fusion: expected one of \('weighted_sum', 'presence', 'cls_gating'\), found 'mean'",
        ),
        ({"other": "sep"}, r"AspectEncoderConfig.other: expected one of"),
        ({"aspects": -1}, r"AspectEncoderConfig.aspects: expected an integer >= 0, found -1"),
        ({"projection": 0}, r"AspectEncoderConfig.projection: expected None or an integer >= 1, found 0"),
        ({"labels": {"field": {}}}, r"AspectEncoderConfig.labels: unknown field\(s\) \['field'\]"),
        (
            {"labels": {"fields": {"brand": "brand"}}},
            r"fields.brand: expected a metadata field such as 'metadata.category', found 'brand'",
        ),
        ({"labels": {"min_count": 0}}, r"min_count: expected an integer >= 1, found 0"),
    ],
)
def test_bad_configs_are_clear_errors(values, message):
    with pytest.raises(ValueError, match=message):
        AspectEncoderConfig(**values)


def test_bad_label_sources_are_clear_errors(tiny_bert, tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"aspect mapping 'pubmed_mesh': expected a YAML file or one of the shipped mappings \['pubmedqa_mesh'\]",
    ):
        AspectLabeler(AspectLabelsConfig(mapping="pubmed_mesh"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfield: metadata.mesh\naspects: {sex: {female: Female}}\n")
    with pytest.raises(
        ValueError, match=r"bad.yaml: aspect 'sex', value 'female': expected a non-empty list of terms"
    ):
        load_term_mapping(str(bad))
    labeler = AspectLabeler(AspectLabelsConfig(fields={"brand": "metadata.brand"}))
    with pytest.raises(
        ValueError, match=r"doc 'd1': expected metadata.brand to be a string or a list of strings, found dict"
    ):
        labeler.labels({"brand": {"name": "Nike"}}, "doc 'd1'")
    with pytest.raises(
        ValueError, match=r"aspect 'brand': no value of metadata.brand appears in 1 or more texts"
    ):
        AspectVocabulary.build(labeler, [labeler.labels({"colour": "red"})])
    with pytest.raises(
        ValueError,
        match=r"aspects=3 but the labels name 2 aspects \['topic', 'size'\]; set architecture.aspects to 2",
    ):
        AspectEncoder.from_pretrained(
            tiny_bert, AspectEncoderConfig(aspects=3, labels=LABELS, **SHORT), VOCABULARY
        )
    with pytest.raises(ValueError, match="expected their vocabulary, found none"):
        AspectEncoder.from_pretrained(tiny_bert, AspectEncoderConfig(aspects=2, labels=LABELS, **SHORT))
