"""CODER end to end (family ``coder``), its document-embedding store step, and its losses by hand (eq. 3)."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch

from auxir.data.candidates import CandidateBatch, CandidateLists
from auxir.data.trec import group_by_query, read_run
from auxir.families.coder import CoderFamily
from auxir.objectives import build_objective
from auxir.objectives.listnet import ListNetKL, PairwiseMaxMargin
from auxir.recipe import load_recipe
from auxir.retrieval.dense import DenseEncoder
from auxir.retrieval.embeddings import EmbeddingStore


def coder_overrides(tiny_bert, tiny_beir, out, *extra):
    return [
        f"model={tiny_bert}",
        f"data.dataset={tiny_beir}",
        f"training.output_dir={out}",
        "training.max_steps=4",
        "training.batch_size=4",
        "training.progress=false",
        "architecture.max_query_length=8",
        "architecture.num_candidates=10",
        "architecture.scorer_heads=4",
        "architecture.retrieve_k=30",
        "data.first_stage_k=20",
        "data.valid_fraction=0.25",
        "objectives.0.params.temperature=1.0",
        *extra,
    ]


def per_query(run):
    counts: dict[str, int] = {}
    for s in run:
        counts[s.query_id] = counts.get(s.query_id, 0) + 1
    return counts


@pytest.mark.parametrize("evaluate,n", [("rerank", 4), ("retrieve", 10)])
def test_coder_experiment_end_to_end(tiny_bert, tiny_beir, tmp_path, evaluate, n):
    from auxir.data.dataset import load_dataset
    from auxir.experiment import run_experiment
    from auxir.models.coder import CoderModel

    extra = (f"architecture.evaluate={evaluate}", f"architecture.num_candidates={n}")
    result = run_experiment(load_recipe("coder", coder_overrides(tiny_bert, tiny_beir, tmp_path, *extra)))
    ds = load_dataset(str(tiny_beir))
    test_queries = {q.query_id for q in ds.qrels("test")}
    reranked = read_run(tmp_path / "reranked.trec")
    first = read_run(tmp_path / "first_stage.trec")
    assert set(per_query(reranked)) == test_queries
    assert 0.0 <= result.reranked["nDCG@10"] <= 1.0 and result.train.steps == 4
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["family"] == "coder" and summary["best_step"] is not None

    store = EmbeddingStore.load(tmp_path / "doc_embeddings")
    assert sorted(store.ids) == sorted(ds.docs.ids())
    lists = CandidateLists.load(tmp_path / "candidates.npz")
    assert lists.rows.shape[1] == n and lists.labels.dtype == np.int8
    # BM25 finds 6 documents a query here: lists of 10 are padded (masked)
    assert bool((lists.rows == -1).any()) == (n == 10)
    assert (tmp_path / "best" / "auxir.json").exists() and (tmp_path / "best" / "modules.json").exists()

    model = CoderModel.from_pretrained(tmp_path / "best")
    if evaluate == "rerank":
        assert per_query(reranked) == per_query(s for s in first if s.query_id in test_queries)
        # a query's top n are scored from the stored (float16) embeddings with the best model; the first
        # stage's tail follows in its order, below them
        query_id = sorted(test_queries)[0]
        ranked = group_by_query(first)[query_id]
        head, tail = ranked[:n], ranked[n:]
        assert tail
        vector = model.encode_queries([ds.queries[query_id].text])[0]
        docs = store.get([s.doc_id for s in head]).astype(np.float16).astype(np.float32)
        expected = dict(zip((s.doc_id for s in head), docs @ vector))
        mine = group_by_query(s for s in reranked if s.query_id == query_id)[query_id]
        assert {s.doc_id: s.score for s in mine[:n]} == pytest.approx(expected, abs=1e-4)
        assert [s.doc_id for s in mine[n:]] == [s.doc_id for s in tail]
    else:
        assert set(per_query(reranked).values()) == {30}  # retrieve_k documents from the whole corpus
        vectors = model.encode_queries([ds.queries[q].text for q in sorted(test_queries)])
        scores = vectors @ store.embeddings.astype(np.float32).T  # (queries, docs)
        top = {
            s.query_id: s.doc_id
            for s in reranked
            if s.score == max(r.score for r in reranked if r.query_id == s.query_id)
        }
        row = {doc_id: i for i, doc_id in enumerate(store.ids)}
        # each query's first document is its best over the whole store (a tiny random model's near ties
        # may order equal-scoring documents either way, so scores are compared, not ids)
        got = [scores[i, row[top[q]]] for i, q in enumerate(sorted(test_queries))]
        assert got == pytest.approx(scores.max(axis=1).tolist(), abs=1e-4)


def test_a_second_run_links_the_cached_store_instead_of_encoding(tiny_bert, tiny_beir, tmp_path, monkeypatch):
    from auxir.experiment import run_experiment

    monkeypatch.setenv("AUXIR_CACHE", str(tmp_path / "cache"))
    calls = []
    encode_docs = DenseEncoder.encode_docs

    def counted(self, *args, **kwargs):
        calls.append(1)
        return encode_docs(self, *args, **kwargs)

    monkeypatch.setattr(DenseEncoder, "encode_docs", counted)
    for run in ("one", "two"):
        recipe = load_recipe(
            "coder", coder_overrides(tiny_bert, tiny_beir, tmp_path / run, "training.max_steps=1")
        )
        run_experiment(recipe)
    assert len(calls) == 1
    first, second = (tmp_path / run / "doc_embeddings" / "embeddings.npy" for run in ("one", "two"))
    assert os.path.samefile(first, second)  # hard links, one copy on disk
    assert np.array_equal(np.load(first), np.load(second))
    # the key changes with the document encoder's settings, not with the query side's
    from auxir.families.coder import corpus_ids, encoder_config, store_key

    ctx = context(tiny_bert, tiny_beir, tmp_path / "three", "architecture.pooling=mean")
    key = store_key(ctx, encoder_config(ctx.recipe), corpus_ids(ctx))
    assert json.loads((first.parent / "auxir_index.json").read_text())["metadata"]["coder_store_key"] == key
    other = dataclasses.replace(encoder_config(ctx.recipe), pooling="mean")
    assert store_key(ctx, other, corpus_ids(ctx)) != key


def context(tiny_bert, tiny_beir, out, *extra):
    from auxir.data.dataset import load_dataset
    from auxir.experiment import first_stage_run, split_queries
    from auxir.families import Context
    from auxir.training.distributed import DistEnv

    recipe = load_recipe("coder", coder_overrides(tiny_bert, tiny_beir, out, *extra))
    ds = load_dataset(recipe.data.dataset)
    split = split_queries(ds, recipe)
    run = first_stage_run(ds, recipe, split.train + split.valid + split.test)
    return Context(recipe, ds, split, run, DistEnv(), out)


def test_num_candidates_beyond_the_first_stage_depth_is_a_clear_error(tiny_bert, tiny_beir, tmp_path):
    from auxir.experiment import run_experiment

    recipe = load_recipe(
        "coder", coder_overrides(tiny_bert, tiny_beir, tmp_path, "architecture.num_candidates=30")
    )
    message = r"num_candidates: expected at most data.first_stage_k = 20 .* found 30"
    with pytest.raises(ValueError, match=message):
        CoderFamily().check(recipe)
    with pytest.raises(ValueError, match=message):  # before any data is read or BM25 is run
        run_experiment(recipe)
    assert not (tmp_path / "first_stage.trec").exists()


def test_a_given_store_is_used_and_must_cover_the_corpus(tiny_bert, tiny_beir, tmp_path):
    from auxir.data.dataset import load_dataset
    from auxir.retrieval.dense import EncoderConfig

    docs = load_dataset(str(tiny_beir)).docs
    store = DenseEncoder(EncoderConfig(str(tiny_bert), device="cpu")).encode_docs(docs)
    store.save(tmp_path / "full")
    ctx = context(tiny_bert, tiny_beir, tmp_path / "run", f"architecture.embeddings={tmp_path / 'full'}")
    model = CoderFamily().build_model(ctx)
    assert ctx.cache["coder.doc_embeddings"].source == "given" and model.doc_dim == store.dim
    assert not (tmp_path / "run" / "doc_embeddings").exists()

    EmbeddingStore(store.ids[:40], store.embeddings[:40]).save(tmp_path / "part")
    ctx = context(tiny_bert, tiny_beir, tmp_path / "run2", f"architecture.embeddings={tmp_path / 'part'}")
    with pytest.raises(
        ValueError,
        match=r"part: expected an embedding for every document of the corpus \(48\), found 8 missing",
    ):
        CoderFamily().build_model(ctx)


# ---- losses by hand ---------------------------------------------------------------------------------


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def listnet(scores, labels, mask=None, **params):
    loss = ListNetKL(ListNetKL.Params(**params))
    mask = None if mask is None else torch.tensor(mask)
    return loss.loss(torch.tensor(scores), torch.tensor(labels), mask)


def test_listnet_kl_is_eq3_by_hand():
    # one positive: the target is one-hot, KL = -log softmax(s)[0]
    assert listnet([[2.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]]).item() == pytest.approx(
        math.log(math.e**2 + math.e + 1) - 2, abs=1e-6
    )
    # graded labels: the target is softmax over the relevant candidates' grades, non-relevant = -inf
    target = [math.e**2 / (math.e**2 + math.e), math.e / (math.e**2 + math.e), 0.0]
    expected = kl(target, softmax([0.5, 0.0, 1.0]))
    assert listnet([[0.5, 0.0, 1.0]], [[2.0, 1.0, 0.0]]).item() == pytest.approx(expected, abs=1e-6)
    # temperature divides the scores
    assert listnet([[0.5, 0.0, 1.0]], [[2.0, 1.0, 0.0]], temperature=0.5).item() == pytest.approx(
        kl(target, softmax([1.0, 0.0, 2.0])), abs=1e-6
    )


def test_listnet_kl_masks_candidates_and_leaves_out_lists_without_a_positive():
    one = listnet([[2.0, 1.0]], [[1.0, 0.0]]).item()
    masked = listnet([[2.0, 1.0, float("-inf")]], [[1.0, 0.0, 1.0]], [[True, True, False]]).item()
    assert masked == pytest.approx(one, abs=1e-6)  # a masked candidate counts for nothing, label or not
    batch = listnet([[2.0, 1.0], [0.0, 3.0]], [[1.0, 0.0], [0.0, 0.0]]).item()
    assert batch == pytest.approx(one, abs=1e-6)  # the all-negative list is not averaged in
    scores = torch.tensor([[0.0, 3.0], [1.0, float("-inf")]], requires_grad=True)
    none = ListNetKL(ListNetKL.Params()).loss(
        scores, torch.zeros(2, 2), torch.tensor([[True, True], [True, False]])
    )
    none.backward()
    assert none.item() == 0.0 and torch.equal(scores.grad, torch.zeros(2, 2))


def test_listnet_kl_label_smoothing_mixes_in_the_uniform_list():
    eps = 0.1
    target = [0.9 * 1.0 + eps / 3, eps / 3, eps / 3]
    expected = kl(target, softmax([2.0, 1.0, 0.0]))
    assert listnet([[2.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]], label_smoothing=eps).item() == pytest.approx(
        expected, abs=1e-6
    )
    # only over the real candidates: a masked one gets no share
    smoothed = listnet(
        [[2.0, 1.0, 5.0]], [[1.0, 0.0, 0.0]], [[True, True, False]], label_smoothing=eps
    ).item()
    assert smoothed == pytest.approx(kl([0.95, 0.05], softmax([2.0, 1.0])), abs=1e-6)


def test_pairwise_max_margin_matches_torch_multilabel_margin_loss():
    scores = torch.tensor([[2.0, 1.5, 0.0, 3.0], [0.2, 0.1, 0.9, -1.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0]])
    # row 1 by hand: (1 - 0.5) + 0 + (1 - (-1)) = 2.5 over 4 candidates
    first = PairwiseMaxMargin(PairwiseMaxMargin.Params()).loss(scores[:1], labels[:1]).item()
    assert first == pytest.approx(2.5 / 4)
    targets = torch.tensor([[0, -1, -1, -1], [1, 2, -1, -1]])
    reference = torch.nn.MultiLabelMarginLoss()(scores, targets).item()
    assert PairwiseMaxMargin(PairwiseMaxMargin.Params()).loss(scores, labels).item() == pytest.approx(
        reference
    )


@pytest.mark.parametrize("name", ["listnet_kl", "pairwise_max_margin"])
def test_list_objectives_train_the_query_encoder(name, tiny_bert):
    from auxir.models.coder import CoderConfig, CoderModel

    torch.manual_seed(0)
    model = CoderModel.from_pretrained(
        str(tiny_bert), CoderConfig(max_query_length=8, scorer="transformer", scorer_heads=4)
    )
    ids, lengths = model.tokenize(["cat kitten", "bank loan rate"])
    docs = torch.randn(2, 6, 32).half()
    labels = torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 0, 2.0, 1.0, 0, 0]])
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 5] = False
    batch = CandidateBatch(torch.from_numpy(ids), torch.from_numpy(lengths), docs, labels, mask, ["a", "b"])
    loss = build_objective(name)(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() >= 0
    loss.backward()
    grad = model.encoder.encoder.layer[0].attention.self.query.weight.grad
    assert grad is not None and grad.abs().sum() > 0
