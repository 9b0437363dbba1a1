"""The bi_encoder family end to end, and the in_batch_softmax objective (by hand, fallback, across processes)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from auxir.data.trec import read_run
from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig
from auxir.objectives import build_objective
from auxir.objectives.in_batch import gather_rows, in_batch_softmax
from auxir.recipe import load_recipe

from .helpers import tiny_batch
from .test_experiment import tiny_overrides


def dot(queries, docs):
    return queries @ docs.T


# ---- the loss against a hand computation -----------------------------------------------------------
def test_in_batch_softmax_matches_a_hand_computation():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    docs = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.5]]])  # (B=2, G=2, H=2)
    loss = in_batch_softmax(queries, docs, dot, ["q1", "q2"], [["p1", "n1"], ["p2", "n2"]])
    # q1 · [p1 n1 p2 n2] = [1, 0, 1, 0], target p1; q2 · ... = [0, 2, 2, 1], target p2
    row1 = -1 + math.log(math.e + 1 + math.e + 1)
    row2 = -2 + math.log(1 + math.e**2 + math.e**2 + math.e)
    assert loss.item() == pytest.approx((row1 + row2) / 2, abs=1e-6)


def test_documents_relevant_to_the_query_are_not_its_negatives():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    docs = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.5]], [[2.0, 0.0], [1.0, 0.0]]])
    # Group 3 is q1's second positive (p3), and its negative is p2, group 2's positive.
    ids = [["p1", "n1"], ["p2", "n2"], ["p3", "p2"]]
    loss = in_batch_softmax(queries, docs, dot, ["q1", "q2", "q1"], ids)
    # Columns p1 n1 p2 n2 p3 p2: row 0 (q1) leaves out p3 (column 4), row 1 (q2) the copy of p2 (column 5),
    # row 2 (q1) p1 (column 0).
    row1 = -1 + math.log(math.exp(1) + 1 + math.exp(1) + 1 + math.exp(1))
    row2 = -2 + math.log(1 + math.exp(2) + math.exp(2) + math.exp(1) + 1)
    row3 = -2 + math.log(math.exp(1) + math.exp(2) + math.exp(0.5) + math.exp(2) + math.exp(1))
    assert loss.item() == pytest.approx((row1 + row2 + row3) / 3, abs=1e-6)


def tiny_bi_encoder(path, **settings) -> BiEncoder:
    torch.manual_seed(0)
    return BiEncoder.from_pretrained(path, BiEncoderConfig(max_length=40, max_query_length=10, **settings))


@pytest.mark.parametrize("hard_negatives", [True, False])
def test_objective_on_a_bi_encoder_equals_scoring_every_pair(tiny_bert, hard_negatives):
    model = tiny_bi_encoder(tiny_bert)
    batch = tiny_batch(model)
    objective = build_objective("in_batch_softmax", {"hard_negatives": hard_negatives})
    loss = objective(model, batch)

    class PairsOnly:  # a model that can only score (query, document) pairs, as a cross-encoder
        score = model.score

    assert loss.item() == pytest.approx(objective(PairsOnly(), batch).item(), abs=1e-5)
    # by hand from the encoded texts: each query against the positives (and negatives) of all groups
    g = batch.group_size if hard_negatives else 1
    q = model.encode_ids(batch.query, batch.query_len, "query")
    d = model.encode_ids(batch.docs[:, :g].flatten(0, 1), batch.doc_len[:, :g].flatten(), "document")
    logits = 20.0 * q @ d.T
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(len(q)) * g)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    loss.backward()
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


# ---- across processes -------------------------------------------------------------------------------
def _ranks_worker(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        queries, docs, ids, qids, sizes = _global_batch()
        start, stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        q = queries[start:stop].clone().requires_grad_()
        d = docs[start:stop].clone().requires_grad_()
        loss = in_batch_softmax(q, d, dot, qids[start:stop], ids[start:stop])
        loss.backward()
        gathered, offset = gather_rows(torch.full((sizes[rank], 2), float(rank)))
        torch.save(
            {
                "loss": loss.detach(),
                "q_grad": q.grad,
                "d_grad": d.grad,
                "gathered": gathered,
                "offset": offset,
            },
            f"{out}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _global_batch():
    sizes = [2, 3]  # the processes hold different numbers of groups (a short last batch)
    n = sum(sizes)
    queries, docs = torch.randn(n, 4), torch.randn(n, 2, 4)
    ids = [[f"p{i}", f"n{i}"] for i in range(n)]
    ids[4][1] = "p0"  # a document of rank 1 that is rank 0's positive: masked for that query
    return queries, docs, ids, [f"q{i}" for i in range(n)], sizes


def test_document_vectors_are_gathered_from_every_process(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ranks_worker, args=(2, f"file://{tmp_path}/rendezvous", str(tmp_path)), nprocs=2)
    torch.manual_seed(0)
    queries, docs, ids, qids, sizes = _global_batch()
    for rank, (start, stop) in enumerate([(0, 2), (2, 5)]):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["offset"] == start
        assert got["gathered"].tolist() == [[0.0, 0.0]] * 2 + [[1.0, 1.0]] * 3
        # The same loss as one process holding the whole batch, restricted to this process's queries ...
        q = queries.clone().requires_grad_()
        d = docs.clone().requires_grad_()
        logits = q[start:stop] @ d.flatten(0, 1).T  # (local queries, all 10 documents)
        if rank == 0:
            logits[0, 9] = float("-inf")  # q0 meets the copy of its positive p0 held by rank 1
        expected = torch.nn.functional.cross_entropy(logits, torch.arange(start, stop) * 2)
        expected.backward()
        assert got["loss"].item() == pytest.approx(expected.item(), abs=1e-6)
        # ... with the gradient reaching this process's own queries and documents only.
        torch.testing.assert_close(got["q_grad"], q.grad[start:stop])
        torch.testing.assert_close(got["d_grad"], d.grad[start:stop])


# ---- the family end to end --------------------------------------------------------------------------
def test_recipe_is_a_bi_encoder_with_in_batch_negatives():
    recipe = load_recipe("biencoder")
    assert recipe.family == "bi_encoder" and isinstance(recipe.architecture, BiEncoderConfig)
    assert [o.name for o in recipe.objectives] == ["in_batch_softmax"]
    assert recipe.architecture.logit_scale == 20.0 and 1 <= recipe.samples.num_negatives <= 7
    with pytest.raises(ValueError, match=r"architecture.similarity: 'l2' is not one of \['cosine', 'dot'\]"):
        load_recipe("biencoder", ["architecture.similarity=l2"])


@pytest.mark.parametrize(("evaluate", "towers"), [("retrieve", "shared"), ("rerank", "separate")])
def test_experiment_trains_and_ranks(tiny_bert, tiny_beir, tmp_path, evaluate, towers):
    from auxir.data.dataset import load_dataset
    from auxir.evaluation.metrics import evaluate as evaluate_run
    from auxir.experiment import run_experiment

    extra = [
        "data.valid_fraction=0.25",
        f"architecture.evaluate={evaluate}",
        f"architecture.towers={towers}",
        "architecture.retrieve_k=30",
    ]
    recipe = load_recipe("biencoder", tiny_overrides(tiny_bert, tiny_beir, tmp_path, *extra))
    result = run_experiment(recipe)
    qrels = load_dataset(str(tiny_beir)).qrels("test")
    ranked = read_run(tmp_path / "reranked.trec")
    assert {s.query_id for s in ranked} == {q.query_id for q in qrels}
    per_query = {q: sum(1 for s in ranked if s.query_id == q) for q in {s.query_id for s in ranked}}
    first_stage = {(s.query_id, s.doc_id) for s in read_run(tmp_path / "first_stage.trec")}
    if evaluate == "retrieve":
        assert set(per_query.values()) == {30}  # retrieve_k of the 48 documents, from the whole corpus
        assert not {(s.query_id, s.doc_id) for s in ranked} <= first_stage
    else:
        assert {(s.query_id, s.doc_id) for s in ranked} <= first_stage
    assert result.reranked == pytest.approx(evaluate_run(ranked, qrels, recipe.evaluation.metrics).aggregate)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["family"] == "bi_encoder" and summary["train_steps"] == 4
    assert summary["best_step"] is not None and summary["rerank_pairs"] > 0
    assert all(
        0.0 <= v <= 1.0 for part in ("reranked", "first_stage", "fused") for v in summary[part].values()
    )
    assert (tmp_path / "best" / "modules.json").exists() and (tmp_path / "best" / "bi_encoder.json").exists()
    assert (tmp_path / "best" / "query" / "modules.json").exists() == (towers == "separate")
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    losses = [r["in_batch_softmax"] for r in log if "in_batch_softmax" in r]
    assert losses and all(math.isfinite(v) and v >= 0 for v in losses)


def test_a_bad_faiss_index_is_a_clear_error():
    import numpy as np

    from auxir.families.bi_encoder import build_index

    vectors = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"architecture.index 'Flatt'.*FAISS cannot build it over 4 vectors"):
        build_index(vectors, list("abcd"), BiEncoderConfig(index="Flatt"))
    index = build_index(vectors, list("abcd"), BiEncoderConfig(index="HNSW8", index_search="efSearch=16"))
    assert [s.doc_id for s in index.search(vectors[1:2], ["q"], k=1)] == ["b"]


def test_retrieval_matches_a_brute_force_search_and_reuses_the_corpus_encoding(
    tiny_bert, tiny_beir, tmp_path
):
    import numpy as np

    from auxir.data.dataset import load_dataset
    from auxir.data.records import ScoredDoc
    from auxir.families import Context, QuerySplit, get_family
    from auxir.training.distributed import DistEnv

    overrides = [f"model={tiny_bert}", "architecture.max_length=48", "architecture.max_query_length=8"]
    recipe = load_recipe("biencoder", [*overrides, "architecture.retrieve_k=5"])
    ds = load_dataset(str(tiny_beir))
    ctx = Context(recipe, ds, QuerySplit([], [], [], [], []), [], DistEnv(), tmp_path)
    family = get_family("bi_encoder")
    model = family.build_model(ctx)
    query_ids = ["cat-q0", "bank-q1", "gene-q3"]
    ranking = family.rank(model, ctx, [ScoredDoc(q, "cat-d0", 1.0) for q in query_ids])
    docs = list(ds.docs)
    similarity = (
        model.encode([ds.queries[q].text for q in query_ids], "query")
        @ model.encode([d.full_text() for d in docs]).T
    )  # (3, 48) cosines
    for row, query_id in enumerate(query_ids):
        top = np.argsort(-similarity[row], kind="stable")[:5]
        got = [s for s in ranking.run if s.query_id == query_id]
        assert [s.doc_id for s in got] == [docs[i].doc_id for i in top]
        assert [s.score for s in got] == pytest.approx(similarity[row, top].tolist(), abs=1e-5)
    assert ranking.pairs == 3 * 48
    corpus = ctx.cache["corpus_index"]
    family.rank(model, ctx, [ScoredDoc("sea-q0", "sea-d0", 1.0)])
    assert ctx.cache["corpus_index"] is corpus  # the same weights: the corpus is not encoded again
    assert family.describe(ctx)["indexed_documents"] == 48
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    family.rank(model, ctx, [ScoredDoc("sea-q0", "sea-d0", 1.0)])
    assert ctx.cache["corpus_index"] is not corpus


def test_cli_rerank_loads_a_saved_bi_encoder_as_one(tiny_bert, tiny_beir, tmp_path) -> None:
    """`auxir rerank --model DIR` reads auxir.json: a bi-encoder scores as a bi-encoder (scale × cosine of
    the two texts encoded alone), never as a cross-encoder with a random head."""
    import numpy as np

    from auxir.cli import main
    from auxir.data.dataset import load_dataset
    from auxir.data.records import ScoredDoc
    from auxir.data.trec import read_run, write_run
    from auxir.models.bi_encoder import BiEncoder

    model = BiEncoder.from_pretrained(str(tiny_bert))
    model.save_pretrained(tmp_path / "bi")
    ds = load_dataset(str(tiny_beir))
    query_id = sorted(ds.queries_for("test"))[0]
    doc_ids = [d.doc_id for d in list(ds.docs)[:4]]
    write_run(tmp_path / "in.trec", [ScoredDoc(query_id, d, 4.0 - i) for i, d in enumerate(doc_ids)], tag="x")
    args = ["rerank", "--model", str(tmp_path / "bi"), "--run", str(tmp_path / "in.trec")]
    args += ["--dataset", str(tiny_beir), "--out", str(tmp_path / "out.trec"), "--device", "cpu"]
    assert main(args) == 0
    scores = {s.doc_id: s.score for s in read_run(tmp_path / "out.trec")}
    q = model.encode([ds.queries[query_id].text], side="query")
    d = model.encode([ds.docs[i].full_text() for i in doc_ids], side="document")
    expected = model.config.logit_scale * (d @ q[0])
    np.testing.assert_allclose([scores[i] for i in doc_ids], expected, atol=1e-4)


def test_cli_rerank_refuses_a_coder_model(tmp_path, capsys) -> None:
    from auxir.cli import main

    (tmp_path / "coder").mkdir()
    (tmp_path / "coder" / "auxir.json").write_text('{"format": "auxir-coder"}')
    (tmp_path / "run.trec").write_text("q Q0 d 1 1.0 x\n")
    args = ["rerank", "--model", str(tmp_path / "coder"), "--run", str(tmp_path / "run.trec")]
    assert main([*args, "--dataset", str(tmp_path), "--out", str(tmp_path / "o.trec")]) == 2
    assert "found a 'auxir-coder' model" in capsys.readouterr().err
