"""Reranking keeps the documents below top_k, after the reranked ones and in their first-stage order."""

from __future__ import annotations

import math

import pytest

from auxir.data.records import ScoredDoc
from auxir.data.trec import group_by_query
from auxir.models.cross_encoder import CrossEncoder
from auxir.reranking import rerank

QUERIES = {"q1": "cat kitten purr", "q2": "bank loan interest"}
DOCS = {
    "a": "the cat is a kitten",
    "b": "a bank of the river",
    "c": "money loan credit at the bank",
    "d": "green tree leaf",
    "e": "gene mutation in the cell",
}
# First-stage order of q1: a, b, then the tie c/e (doc id descending: e before c), then d.
RUN = [
    ScoredDoc("q1", "d", 1.0),
    ScoredDoc("q1", "c", 2.0),
    ScoredDoc("q1", "a", 9.0),
    ScoredDoc("q1", "e", 2.0),
    ScoredDoc("q1", "b", 5.0),
    ScoredDoc("q2", "a", 0.1),
    ScoredDoc("q2", "b", 0.5),
    ScoredDoc("q2", "c", 0.9),
    ScoredDoc("q2", "d", 0.3),
    ScoredDoc("q2", "e", 0.7),
]
FIRST_STAGE = {"q1": ["a", "b", "e", "c", "d"], "q2": ["c", "e", "b", "d", "a"]}


@pytest.fixture(scope="module")
def model(tiny_bert):
    return CrossEncoder.from_pretrained(tiny_bert)


def run_rerank(model, **kwargs):
    return rerank(model, RUN, QUERIES, DOCS.__getitem__, top_k=2, device="cpu", **kwargs)


def test_first_stage_order_is_as_written():
    assert {q: [s.doc_id for s in ranked] for q, ranked in group_by_query(RUN).items()} == FIRST_STAGE


def test_tail_follows_the_reranked_documents_in_first_stage_order(model):
    kept = run_rerank(model)
    top = group_by_query(run_rerank(model, keep_tail=False).run)  # the model's order of each top 2
    assert kept.pairs == 4
    for query_id, ranked in group_by_query(kept.run).items():
        ids = [s.doc_id for s in ranked]
        assert len(ids) == 5
        # The first two are the reranked ones, in the model's order with the model's scores ...
        assert ranked[:2] == top[query_id]
        assert set(ids[:2]) == set(FIRST_STAGE[query_id][:2])
        # ... the other three keep their first-stage order, strictly below and strictly decreasing.
        assert ids[2:] == FIRST_STAGE[query_id][2:]
        scores = [s.score for s in ranked]
        assert all(math.isfinite(x) for x in scores)
        assert all(high > low for high, low in zip(scores[1:], scores[2:]))


def test_drop_tail_keeps_the_top_k_only(model):
    dropped = run_rerank(model, keep_tail=False)
    assert dropped.pairs == 4
    assert {q: sorted(s.doc_id for s in ranked) for q, ranked in group_by_query(dropped.run).items()} == {
        q: sorted(ids[:2]) for q, ids in FIRST_STAGE.items()
    }


def test_top_k_below_one_is_an_error(model):
    with pytest.raises(ValueError, match="top_k must be ≥ 1, got 0"):
        rerank(model, RUN, QUERIES, DOCS.__getitem__, top_k=0, device="cpu")
