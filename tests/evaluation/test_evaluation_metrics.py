"""Metric values pinned against hand computations on the inline TREC strings of conftest.py.

Rankings (grade in brackets, '-' = unjudged):
    q1: d2(0) d1(3) d3(1) d5(-) d4(2)        judged relevant not retrieved: d9(2)
    q2: d5(0) d1(1) d6(2)
    q3: judged (d7=1), not in the run;  q4: in the run, not judged.
By default (trec_eval without -c) the means are over q1 and q2.
"""

from __future__ import annotations

import csv
import math

import pytest

from auxir.data.records import Qrel, ScoredDoc
from auxir.evaluation.metrics import Coverage, evaluate, parse_metrics

LOG2_3 = math.log2(3)

# nDCG@3, trec_eval style: gain = grade, discount 1/log2(rank + 1).
#   q1: DCG = 0/1 + 3/log2(3) + 1/log2(4) = 3/1.58496 + 0.5 = 2.39279
#       ideal grades 3,2,2 -> IDCG = 3/1 + 2/log2(3) + 2/2 = 5.26186;   nDCG = 0.45474
#   q2: DCG = 0 + 1/log2(3) + 2/log2(4) = 1.63093;  ideal 2,1,0 -> IDCG = 2 + 1/log2(3) = 2.63093;  nDCG = 0.61991
NDCG3_Q1 = (3 / LOG2_3 + 1 / 2) / (3 + 2 / LOG2_3 + 2 / 2)
NDCG3_Q2 = (1 / LOG2_3 + 2 / 2) / (2 + 1 / LOG2_3)

# RR@10, rel >= 1: q1 first relevant d1 at rank 2 -> 1/2; q2 d1 at rank 2 -> 1/2.        mean 0.5
# RR@10, rel >= 2: q1 d1(3) at rank 2 -> 1/2; q2 d6(2) at rank 3 -> 1/3.                  mean 5/12
# P@5,  rel >= 1: q1 d1 d3 d4 -> 3/5; q2 d1 d6 -> 2/5 (trec_eval divides by the cutoff).   mean 0.5
# P@5,  rel >= 2: q1 d1 d4 -> 2/5; q2 d6 -> 1/5.                                           mean 0.3
# AP,   rel >= 1: q1 R=4 (d1 d3 d4 d9): (1/2 + 2/3 + 3/5) / 4 = 0.44167
#                 q2 R=2 (d1 d6):       (1/2 + 2/3) / 2     = 0.58333                   mean 0.5125
# AP,   rel >= 2: q1 R=3 (d1 d4 d9): (1/2 + 2/5) / 3 = 0.3;  q2 R=1 (d6): (1/3) / 1        mean 0.31667
# R@100, rel >= 1: q1 3 of 4, q2 2 of 2 -> mean 0.875;  rel >= 2: q1 2 of 3, q2 1 of 1 -> mean 0.83333
# R@3,  rel >= 1: q1 top 3 holds d1 d3 -> 2/4;  q2 2/2.                                    mean 0.75
# Judged@5: q1 4 of 5 judged (d5 is not); q2 3 of 3 (ir_measures divides by min(k, retrieved)). mean 0.9
EXPECTED = {
    "nDCG@3": (NDCG3_Q1 + NDCG3_Q2) / 2,
    "RR@10": (1 / 2 + 1 / 2) / 2,
    "RR(rel=2)@10": (1 / 2 + 1 / 3) / 2,
    "P@5": (3 / 5 + 2 / 5) / 2,
    "P(rel=2)@5": (2 / 5 + 1 / 5) / 2,
    "AP": ((1 / 2 + 2 / 3 + 3 / 5) / 4 + (1 / 2 + 2 / 3) / 2) / 2,
    "AP(rel=2)": ((1 / 2 + 2 / 5) / 3 + (1 / 3) / 1) / 2,
    "R@100": (3 / 4 + 2 / 2) / 2,
    "R(rel=2)@100": (2 / 3 + 1 / 1) / 2,
    "R@3": (2 / 4 + 2 / 2) / 2,
    "Judged@5": (4 / 5 + 3 / 3) / 2,
}


def test_metric_values_match_hand_computation(run, qrels):
    result = evaluate(run, qrels, list(EXPECTED))
    assert result.aggregate == pytest.approx(EXPECTED, abs=1e-12)
    assert result.query_ids == ["q1", "q2"]  # q3 not run (trec_eval default), q4 not judged
    assert result.per_query["nDCG@3"] == pytest.approx({"q1": NDCG3_Q1, "q2": NDCG3_Q2})
    assert result.per_query["RR(rel=2)@10"] == pytest.approx({"q1": 1 / 2, "q2": 1 / 3})


def test_rel_threshold_applies_to_binary_metrics_only(run, qrels):
    # rel=2 turns RR@10, P@5, AP, R@100 into their strict forms; nDCG stays graded; an explicit rel is kept.
    result = evaluate(
        run, qrels, ["RR@10", "P@5", "AP", "R@100", "nDCG@3", "RR(rel=1)@10", "Judged@5"], rel=2
    )
    assert result.aggregate["RR@10"] == pytest.approx(EXPECTED["RR(rel=2)@10"])
    assert result.aggregate["P@5"] == pytest.approx(EXPECTED["P(rel=2)@5"])
    assert result.aggregate["AP"] == pytest.approx(EXPECTED["AP(rel=2)"])
    assert result.aggregate["R@100"] == pytest.approx(EXPECTED["R(rel=2)@100"])
    assert result.aggregate["nDCG@3"] == pytest.approx(EXPECTED["nDCG@3"])
    assert result.aggregate["RR(rel=1)@10"] == pytest.approx(EXPECTED["RR@10"])
    assert result.aggregate["Judged@5"] == pytest.approx(EXPECTED["Judged@5"])
    assert result.measures["RR@10"] == "RR(rel=2)@10" and result.measures["nDCG@3"] == "nDCG@3"


def test_missing_queries_zero_counts_judged_queries_absent_from_run(run, qrels):
    # trec_eval -c: q3 (judged, not run) scores 0 and joins the mean; q4 (not judged) is still ignored.
    result = evaluate(run, qrels, ["nDCG@3", "RR@10"], missing="zero")
    assert result.query_ids == ["q1", "q2", "q3"]
    assert result.aggregate["nDCG@3"] == pytest.approx((NDCG3_Q1 + NDCG3_Q2 + 0) / 3)
    assert result.aggregate["RR@10"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)


def test_ties_are_broken_by_doc_id_descending_for_every_metric():
    # Same score: trec_eval ranks "dB" before "dA", so the relevant dA sits at rank 2. ir_measures computes
    # RR@10 with its MS MARCO provider (ties by doc id ascending) and RR / P@1 with pytrec_eval: all must agree.
    run = [ScoredDoc("q", "dA", 1.0), ScoredDoc("q", "dB", 1.0)]
    result = evaluate(run, [Qrel("q", "dA", 1)], ["RR@10", "RR", "P@1", "nDCG@1"])
    assert result.aggregate == pytest.approx({"RR@10": 0.5, "RR": 0.5, "P@1": 0.0, "nDCG@1": 0.0})


def test_per_query_csv(run, qrels, tmp_path):
    path = tmp_path / "out" / "per_query.csv"
    evaluate(run, qrels, ["RR@10", "P@5"]).write_per_query_csv(path)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["query_id", "RR@10", "P@5"]
    assert [(r[0], float(r[1]), float(r[2])) for r in rows[1:]] == [("q1", 0.5, 0.6), ("q2", 0.5, 0.4)]


def test_unknown_metric_lists_valid_examples(run, qrels):
    with pytest.raises(ValueError, match=r"unknown metric 'MRR_cut@10'.*nDCG@10.*RR\(rel=2\)@10"):
        evaluate(run, qrels, ["nDCG@10", "MRR_cut@10"])


def test_parameter_a_metric_does_not_take_is_rejected():
    with pytest.raises(ValueError, match=r"invalid metric 'nDCG\(rel=2\)@10'.*nDCG takes: cutoff"):
        parse_metrics(["nDCG(rel=2)@10"])


def test_run_without_overlapping_queries_is_an_error(qrels):
    run = [ScoredDoc("other", "d1", 1.0)]
    with pytest.raises(
        ValueError, match=r"share query ids.*run queries 1 \(e\.g\. 'other'\).*judged queries 3"
    ):
        evaluate(run, qrels, "nDCG@10")


def test_duplicate_document_in_run_is_an_error(qrels):
    run = [ScoredDoc("q1", "d1", 2.0), ScoredDoc("q1", "d1", 1.0)]
    with pytest.raises(ValueError, match="doc 'd1' twice"):
        evaluate(run, qrels, "nDCG@10")


def test_coverage_counts_judged_queries_and_judged_at_10(run, qrels):
    # q1 ranks d2 d1 d3 d5 d4: 4 of 5 judged; q2 ranks d5 d1 d6: all judged; q4 has no judgements.
    result = evaluate(run, qrels, ["RR@10"])
    assert result.coverage == Coverage(run_queries=3, judged_queries=2, judged_at_10=pytest.approx(0.9))
    assert result.coverage.warnings() == []
    assert "run: 3 queries, 2 judged (67%), Judged@10 0.9000" in result.to_table()


def test_coverage_warns_when_a_run_barely_overlaps_the_qrels():
    # One judged query out of three, and its top 10 holds no judged document (the relevant one is 11th).
    run = [ScoredDoc("q1", f"n{i}", float(20 - i)) for i in range(10)] + [ScoredDoc("q1", "rel", 1.0)]
    run += [ScoredDoc("x1", "n0", 1.0), ScoredDoc("x2", "n0", 1.0)]
    result = evaluate(run, [Qrel("q1", "rel", 1)], ["RR@100"])
    assert result.coverage == Coverage(run_queries=3, judged_queries=1, judged_at_10=0.0)
    warnings = result.coverage.warnings()
    assert len(warnings) == 2
    assert warnings[0].startswith("only 1 of its 3 queries are judged (33% < 50%)")
    assert warnings[1].startswith("Judged@10 is 0.0000 (< 0.02)")
    assert "warning: Judged@10 is 0.0000" in result.to_table()


def test_sparse_judgements_do_not_warn():
    # SciFact judges only the relevant documents (1.1 a query): a good run's Judged@10 is about 0.1.
    assert Coverage(run_queries=100, judged_queries=100, judged_at_10=0.095).warnings() == []
    assert Coverage(run_queries=100, judged_queries=100, judged_at_10=0.0).warnings() != []
