"""Scorers: CEDR-KNRM kernel pooling and PACRR k-max pooling against hand computations, PARADE's passage
splitting and aggregation (permutations, padding, batch neighbours), training with every scorer (MQP
included), save/reload, and an experiment end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from auxir.data.token_cache import pad_stack
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
from auxir.models.scorers import SCORERS, PassageSplit, build_scorer
from auxir.models.scorers.cedr_knrm import CEDR_MUS, CEDR_SIGMAS, KernelPooling
from auxir.models.scorers.pacrr import NgramKMax
from auxir.models.scorers.similarity import similarity_matrices
from tests.training.conftest import tiny_beir  # noqa: F401  (a fixture)
from tests.training.test_trainer import log_records, make_trainer

AGGREGATIONS = ["max", "mean", "attention", "transformer"]
# Every scorer of the registry, with settings that fit the tiny model's 48-token pairs (8 query tokens).
SCORER_SETTINGS = {
    "cls": {},
    "cedr_knrm": {},
    "pacrr": {"query_length": 8},
    **{f"parade-{a}": {"aggregation": a, "passage_length": 4, "stride": 3} for a in AGGREGATIONS},
}


def scorer_config(setting: str, **config) -> CrossEncoderConfig:
    name = setting.split("-")[0]
    return CrossEncoderConfig(
        scorer=name,
        scorer_params=dict(SCORER_SETTINGS[setting]),
        max_length=48,
        max_query_length=8,
        **({"bi_encoder": "none"} if name == "parade" else {}) | config,
    )


def tiny_model(path, setting: str, **config) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder.from_pretrained(str(path), scorer_config(setting, **config))


def token_ids(model: CrossEncoder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = model.tokenizer(texts, add_special_tokens=False)["input_ids"]
    import numpy as np

    padded, lengths = pad_stack([np.asarray(i) for i in ids], model.template.pad_id)
    return torch.from_numpy(padded), torch.from_numpy(lengths)


def scores(model: CrossEncoder, queries: list[str], docs: list[str]) -> torch.Tensor:
    (q, ql), (d, dl) = token_ids(model, queries), token_ids(model, docs)
    with torch.no_grad():
        return model.score(q, ql, d, dl)


def perturb(module: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


def test_every_registered_scorer_is_covered():
    assert {s.split("-")[0] for s in SCORER_SETTINGS} == set(SCORERS)


# ---- CEDR-KNRM ---------------------------------------------------------------------------------------
def test_kernel_pooling_equals_a_hand_computation():
    mus, sigmas = (0.5, 1.0), (0.1, 0.001)
    # one pair: 2 query tokens (a third position is padding), 3 document tokens (a fourth is padding)
    sim = torch.tensor([[[0.5, 1.0, 0.2, 0.5], [0.45, -0.1, 0.9, 0.5], [0.5, 0.5, 0.5, 0.5]]])  # (1, Q, D)
    query_valid = torch.tensor([[True, True, False]])
    doc_valid = torch.tensor([[True, True, True, False]])
    features = KernelPooling(mus, sigmas)(sim.unsqueeze(1), query_valid, doc_valid)  # (1, 1, K)

    def kernel(s, mu, sigma):
        return math.exp(-((s - mu) ** 2) / (2 * sigma**2))

    expected = []
    for mu, sigma in zip(mus, sigmas):
        total = 0.0
        for row in ([0.5, 1.0, 0.2], [0.45, -0.1, 0.9]):  # the valid block only
            total += math.log(sum(kernel(s, mu, sigma) for s in row) + 1e-6)
        expected.append(total)
    # μ=0.5: row 1 counts 1 + e^-12.5 + e^-4.5, row 2 e^-0.125 + e^-18 + e^-8; exact match: row 1 only
    assert features[0, 0].tolist() == pytest.approx(expected, rel=1e-5)
    assert expected[1] == pytest.approx(math.log(1 + 1e-6) + math.log(1e-6), rel=1e-6)


def test_exact_match_kernel_fires_only_on_identical_vectors():
    torch.manual_seed(0)
    a, b = torch.randn(16), torch.randn(16)
    near = a + 0.15 * torch.randn(16)  # a different vector pointing almost the same way
    cos_near = torch.nn.functional.cosine_similarity(a, near, dim=0)
    assert 0.95 < cos_near < 0.999
    # a pair [query a, b | document a, near, a, b, pad]: positions 0-1 query, 2-6 document, 7 padding
    hidden = torch.stack([a, b, a, near, a, b, torch.zeros(16), a]).unsqueeze(0)  # (1, W=8, H)
    query_mask = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    doc_mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    sim = similarity_matrices((hidden,), query_mask, doc_mask)
    pooling = KernelPooling(CEDR_MUS, CEDR_SIGMAS)
    z = (sim.values.unsqueeze(-1) - pooling.mus) / pooling.sigmas
    soft_counts = (torch.exp(-0.5 * z * z) * sim.doc_valid[:, None, None, :, None]).sum(3)  # (1, V, Q, K)
    exact = soft_counts[0, 0, :, -1]  # the exact-match kernel, per query token
    # query a: two identical copies (the near copy and the zero vector, whose cosine is 0, do not count);
    # the last position holds a too, but it is padding
    assert exact.tolist() == pytest.approx([2.0, 1.0], abs=1e-4)
    features = pooling(sim.values, sim.query_valid, sim.doc_valid)
    assert features[0, 0, -1].item() == pytest.approx(math.log(2 + 1e-6) + math.log(1 + 1e-6), abs=1e-4)


def test_cedr_knrm_starts_as_the_cls_score(tiny_bert):
    knrm = tiny_model(tiny_bert, "cedr_knrm").eval()
    cls = tiny_model(tiny_bert, "cls").eval()  # same seed: the same classifier
    queries, docs = ["cat kitten purr", "gene"], ["the cat is a kitten with fur", "star planet orbit"]
    assert torch.allclose(scores(knrm, queries, docs), scores(cls, queries, docs), atol=1e-5)


# ---- PACRR -------------------------------------------------------------------------------------------
def test_pacrr_unigram_k_max_by_hand():
    ngram = NgramKMax(ngram=1, channels=1, filters=1, k=2)
    with torch.no_grad():
        ngram.conv.weight.fill_(1.0)
        ngram.conv.bias.zero_()
    sim = torch.tensor([[[0.2, 0.9, -0.5, 0.95], [0.1, -0.3, -0.2, 0.99]]]).unsqueeze(1)  # (1, V=1, Q=2, D=4)
    doc_valid = torch.tensor([[True, True, True, False]])  # the 0.95 / 0.99 column is padding
    top = ngram(sim, doc_valid)
    assert torch.allclose(top[0], torch.tensor([[0.9, 0.2], [0.1, 0.0]]))  # ReLU, then the 2 largest


def test_pacrr_bigram_k_max_by_hand():
    ngram = NgramKMax(ngram=2, channels=1, filters=2, k=2)
    with torch.no_grad():
        ngram.conv.weight.zero_()
        ngram.conv.weight[0].fill_(1.0)  # filter 0 sums the 2x2 window
        ngram.conv.weight[1, 0, 0, 0] = 3.0  # filter 1: three times the window's top-left value
        ngram.conv.bias.zero_()
    s = [[0.5, 0.1, 0.2], [0.3, 0.4, -0.6]]
    sim = torch.tensor(s).view(1, 1, 2, 3)
    top = ngram(sim, torch.ones(1, 3, dtype=torch.bool))
    padded = [row + [0.0] for row in s] + [[0.0] * 4]  # zeros after the last row and column

    def response(i, j):
        window = padded[i][j] + padded[i][j + 1] + padded[i + 1][j] + padded[i + 1][j + 1]
        return max(0.0, window, 3 * padded[i][j])

    expected = [sorted((response(i, j) for j in range(3)), reverse=True)[:2] for i in range(2)]
    assert torch.allclose(top[0], torch.tensor(expected))


def test_pacrr_documents_shorter_than_k_give_zeros():
    ngram = NgramKMax(ngram=1, channels=1, filters=1, k=3)
    top = ngram(torch.rand(1, 1, 2, 4), torch.tensor([[True, False, False, False]]))
    assert (top[0, :, 1:] == 0).all() and (top[0, :, 0] >= 0).all()


def test_pacrr_query_length_must_cover_max_query_length(tiny_bert):
    with pytest.raises(ValueError, match="query_length 4 is shorter than max_query_length 8"):
        CrossEncoder.from_pretrained(
            str(tiny_bert),
            CrossEncoderConfig(
                scorer="pacrr", scorer_params={"query_length": 4}, max_length=48, max_query_length=8
            ),
        )


@pytest.mark.parametrize("setting", ["cedr_knrm", "pacrr"])
def test_similarity_scorers_ignore_the_padding_of_their_batch(setting, tiny_bert):
    """CEDR leaves padded document positions in the kernels (μ = ±0.1 count them) and PACRR in its k-max:
    there a document's score depends on the longest document of its batch. Not here."""
    model = tiny_model(tiny_bert, setting).eval()
    perturb(model.scorer)
    alone = scores(model, ["cat kitten"], ["cat fur"])
    batched = scores(
        model, ["cat kitten", "bank loan interest rate credit"], ["cat fur", " ".join(["tree"] * 30)]
    )
    assert batched[0].item() == pytest.approx(alone[0].item(), abs=1e-5)


# ---- PARADE ------------------------------------------------------------------------------------------
def test_long_document_is_split_into_overlapping_passages():
    split = PassageSplit(length=4, stride=3, max_passages=3)
    doc = torch.tensor(
        [
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],  # 12 tokens: 4 passages needed, 3 kept
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0],  # 10 tokens: exactly 3
            [21, 22, 23, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # shorter than a passage: 1
            [0] * 12,  # empty: one empty passage
        ]
    )
    doc_len = torch.tensor([12, 10, 3, 0])
    passages = split.split(doc, doc_len)
    got = [row[:n].tolist() for row, n in zip(passages.tokens, passages.lengths.tolist())]
    assert got == [
        [1, 2, 3, 4],
        [4, 5, 6, 7],
        [7, 8, 9, 10],
        [1, 2, 3, 4],
        [4, 5, 6, 7],
        [7, 8, 9, 10],
        [21, 22, 23],
        [],
    ]
    assert passages.doc_index.tolist() == [0, 0, 0, 1, 1, 1, 2, 3]
    assert passages.slot.tolist() == [0, 1, 2, 0, 1, 2, 0, 0]
    assert passages.mask.tolist() == [[True] * 3, [True] * 3, [True, False, False], [True, False, False]]
    assert split.max_doc_tokens == 10
    assert split.count(torch.tensor([4, 5, 7, 8])).tolist() == [1, 2, 2, 3]


def test_passage_settings_are_checked(tiny_bert):
    with pytest.raises(ValueError, match="stride ≤ passage_length"):
        PassageSplit(length=4, stride=5, max_passages=2)
    with pytest.raises(ValueError, match="passage_length 40 does not fit a pair"):
        CrossEncoder.from_pretrained(
            str(tiny_bert),
            CrossEncoderConfig(
                scorer="parade",
                scorer_params={"passage_length": 40, "stride": 30},
                bi_encoder="none",
                max_length=48,
                max_query_length=8,
            ),
        )
    with pytest.raises(ValueError, match="bi_encoder='joint' cannot be combined"):
        tiny_model(tiny_bert, "parade-max", bi_encoder="joint")
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['passage_len'\]"):
        build_scorer("parade", 32, 2, {"passage_len": 4})
    with pytest.raises(ValueError, match="aggregation 'min' is not one of"):
        build_scorer("parade", 32, 2, {"aggregation": "min"})


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_parade_scores_a_document_from_its_passages_each_encoded_with_the_query(aggregation, tiny_bert):
    model = tiny_model(tiny_bert, f"parade-{aggregation}").eval()
    query, doc = "cat kitten", "the cat is a kitten with fur and purr"  # 9 tokens: passages at 0, 3, 6
    (q, ql), (d, dl) = token_ids(model, [query]), token_ids(model, [doc])
    with torch.no_grad():
        cls = []
        for start in (0, 3, 6):  # each (query, passage) pair on its own, as monoBERT would see it
            piece = d[:, start : start + 4]
            inputs = model.pack(q, ql, piece, torch.tensor([piece.shape[1]]))
            cls.append(model._encode(inputs).hidden_states[-1][:, 0])
        expected = model.scorer.aggregate(torch.stack(cls, dim=1), torch.ones(1, 3, dtype=torch.bool))
        assert torch.allclose(model.score(q, ql, d, dl), expected, atol=1e-5)


@pytest.mark.parametrize("aggregation", ["max", "mean", "attention"])
def test_parade_aggregation_ignores_the_order_of_passages(aggregation):
    scorer = build_scorer("parade", 32, 2, {"aggregation": aggregation}).eval()
    torch.manual_seed(0)
    passages = torch.randn(2, 5, 32)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    permuted = passages.clone()
    permuted[0] = passages[0, [3, 0, 4, 2, 1]]
    permuted[1, :3] = passages[1, [2, 0, 1]]
    with torch.no_grad():
        assert torch.allclose(scorer.aggregate(passages, mask), scorer.aggregate(permuted, mask), atol=1e-6)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_parade_padding_passages_never_change_a_score(aggregation):
    scorer = build_scorer("parade", 32, 2, {"aggregation": aggregation}).eval()
    torch.manual_seed(0)
    passages = torch.randn(3, 2, 32)
    mask = torch.tensor([[True, True], [True, False], [True, True]])
    padded = torch.cat([passages, 100 * torch.randn(3, 3, 32)], dim=1)  # 3 padding slots full of garbage
    padded[1, 1] = -100.0
    padded_mask = torch.cat([mask, torch.zeros(3, 3, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        reference = scorer.aggregate(passages[:, :2], mask)
        assert torch.allclose(scorer.aggregate(padded, padded_mask), reference, atol=1e-5)
        # a document of one passage scores alike however many slots its batch has
        one = scorer.aggregate(passages[1:2, :1], torch.ones(1, 1, dtype=torch.bool))
        assert one.item() == pytest.approx(reference[1].item(), abs=1e-5)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_parade_documents_of_a_batch_do_not_affect_each_other(aggregation, tiny_bert):
    model = tiny_model(tiny_bert, f"parade-{aggregation}").eval()
    perturb(model.scorer)
    queries = ["cat kitten", "bank loan interest rate credit", "gene", "tree"]
    docs = [
        "cat fur purr",
        " ".join(["money loan credit at the bank"] * 3),
        "",
        "green tree leaf root branch",
    ]
    together = scores(model, queries, docs)
    alone = torch.cat([scores(model, [q], [d]) for q, d in zip(queries, docs)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_parade_pairs_hold_the_first_passage(tiny_bert):
    """What the masked-token objectives see: the document cut to its first passage."""
    model = tiny_model(tiny_bert, "parade-max")
    (q, ql), (d, dl) = token_ids(model, ["cat kitten"]), token_ids(model, ["the cat is a kitten with fur"])
    inputs = model.pack(q, ql, d, dl)
    assert inputs.doc_len.tolist() == [4]
    assert inputs.input_ids[0, 4:8].tolist() == d[0, :4].tolist()  # [CLS] cat kitten [SEP] | passage
    assert model.max_doc_tokens == 4 + 15 * 3  # 16 passages, 3 apart


# ---- training, persistence, experiment ------------------------------------------------------------------
@pytest.mark.parametrize("objectives", [{"listwise_softmax": 1.0}, {"listwise_softmax": 1.0, "mqp": 0.2}])
@pytest.mark.parametrize("setting", sorted(SCORER_SETTINGS))
def test_every_scorer_trains_with_every_objective_mix(setting, objectives, tiny_bert, tmp_path):
    model = tiny_model(tiny_bert, setting)
    scorer_before = [p.detach().clone() for p in model.scorer.parameters()]
    encoder_before = model.backbone.base_model.encoder.layer[0].output.dense.weight.detach().clone()
    result = make_trainer(model, tmp_path, objectives, max_steps=3).train()
    assert result.steps == 3
    for record in log_records(tmp_path):
        for name in objectives:
            assert math.isfinite(record[name])
    assert not torch.equal(encoder_before, model.backbone.base_model.encoder.layer[0].output.dense.weight)
    changed = [not torch.equal(a, b) for a, b in zip(scorer_before, model.scorer.parameters())]
    assert all(changed[-2:])  # the output layer (weight, bias) of every scorer with parameters learns


@pytest.mark.parametrize("setting", sorted(set(SCORER_SETTINGS) - {"cls"}))
def test_scorer_parameters_are_new_parameters(setting, tiny_bert):
    model = tiny_model(tiny_bert, setting)
    names = {f"scorer.{n}" for n, _ in model.scorer.named_parameters()}
    assert names and names <= model.new_parameter_names()


@pytest.mark.parametrize("setting", sorted(SCORER_SETTINGS))
def test_save_and_reload_give_identical_scores(setting, tiny_bert, tmp_path):
    model = tiny_model(tiny_bert, setting).eval()
    perturb(model.scorer)  # trained weights, not the initial ones
    model.save_pretrained(tmp_path / "m")
    stored = load_file(str(tmp_path / "m" / "auxir_heads.safetensors"))
    assert {f"scorer.{k}" for k in model.scorer.state_dict()} <= set(stored)
    config = json.loads((tmp_path / "m" / "config.json").read_text())["auxir"]
    assert config["scorer"] == setting.split("-")[0] and config["scorer_params"] == SCORER_SETTINGS[setting]
    reloaded = CrossEncoder.from_pretrained(tmp_path / "m").eval()
    assert reloaded.new_parameter_names() == set()
    queries = ["cat kitten purr", "bank loan", "gene"]
    docs = ["the cat is a kitten with fur and purr of mouse", "money loan credit at the bank", "star"]
    assert torch.allclose(scores(model, queries, docs), scores(reloaded, queries, docs), atol=1e-6)


def test_a_new_scorer_starts_over_a_trained_checkpoint(tiny_bert, tmp_path):
    """CEDR trains its scorers on a fine-tuned monoBERT: the encoder and heads load, the scorer is new."""
    monobert = tiny_model(tiny_bert, "cls")
    perturb(monobert.backbone)
    monobert.save_pretrained(tmp_path / "monobert")
    cedr = CrossEncoder.from_pretrained(tmp_path / "monobert", scorer_config("cedr_knrm"))
    assert cedr.new_parameter_names() == {f"scorer.{n}" for n, _ in cedr.scorer.named_parameters()}
    assert torch.equal(cedr.backbone.classifier.weight, monobert.backbone.classifier.weight)
    queries, docs = ["cat kitten purr", "gene"], ["the cat is a kitten", "star planet"]
    assert torch.allclose(
        scores(cedr.eval(), queries, docs), scores(monobert.eval(), queries, docs), atol=1e-5
    )


@pytest.mark.parametrize(
    ("recipe", "scorer_params"),
    [
        ("parade-mqp", "{aggregation: transformer, passage_length: 8, stride: 6}"),
        ("pacrr", "{query_length: 8}"),
    ],
)
def test_experiment_runs_end_to_end(recipe, scorer_params, tiny_bert, tiny_beir, tmp_path):  # noqa: F811
    from auxir.experiment import run_experiment
    from auxir.recipe import load_recipe
    from tests.training.test_experiment import tiny_overrides

    overrides = tiny_overrides(
        tiny_bert,
        tiny_beir,
        tmp_path,
        "data.valid_fraction=0.25",
        f"architecture.scorer_params={scorer_params}",
    )
    result = run_experiment(load_recipe(recipe, overrides))
    assert all(math.isfinite(v) for v in result.reranked.values())
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["train_steps"] == 4
    reloaded = CrossEncoder.from_pretrained(tmp_path / "best")
    assert reloaded.config.scorer == load_recipe(recipe).architecture.scorer
