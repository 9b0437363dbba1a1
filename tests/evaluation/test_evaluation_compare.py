"""Comparisons: Holm against hand examples, the t-test against a formula computed independently, W/T/L."""

from __future__ import annotations

import csv
import math

import pytest
from scipy import stats

from auxir.data.records import Qrel, ScoredDoc
from auxir.evaluation.compare import compare, holm_bonferroni, paired_t_test

QUERIES = ["q1", "q2", "q3", "q4", "q5"]
QRELS = [Qrel(q, "rel", 1) for q in QUERIES]


def ranked_at(ranks: dict[str, int]) -> list[ScoredDoc]:
    """A run that puts each query's one relevant doc at the given rank (RR = 1/rank, P@1 = rank == 1)."""
    run = []
    for qid, rank in ranks.items():
        docs = [f"n{i}" for i in range(1, 6)]
        docs.insert(rank - 1, "rel")
        run += [ScoredDoc(qid, doc, float(10 - i)) for i, doc in enumerate(docs)]
    return run


# RR per query: baseline [1, 1/2, 1/4, 1, 1/5]; A [1, 1, 1, 1/2, 1]; B identical to the baseline.
BASELINE = ranked_at({"q1": 1, "q2": 2, "q3": 4, "q4": 1, "q5": 5})
RUN_A = ranked_at({"q1": 1, "q2": 1, "q3": 1, "q4": 2, "q5": 1})


def test_holm_matches_hand_example():
    # sorted p: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm_bonferroni([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1; NaN (no test) stays NaN and does not count: m = 2 below
    assert holm_bonferroni([0.6, 0.7]) == [1.0, 1.0]
    adjusted = holm_bonferroni([0.02, math.nan, 0.04])
    assert (
        adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    )


def test_t_test_matches_formula():
    # differences d = A - baseline = [0, 1/2, 3/4, -1/2, 4/5]; t = mean(d) / (sd(d) / sqrt(n)), df = n - 1
    a, b = [1, 1, 1, 0.5, 1], [1, 0.5, 0.25, 1, 0.2]
    d = [x - y for x, y in zip(a, b, strict=True)]
    n, mean = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    p = 2 * stats.t.sf(abs(t), df=n - 1)
    result = paired_t_test(a, b)
    assert result.t == pytest.approx(t) and result.p == pytest.approx(p)
    assert t == pytest.approx(1.25413, abs=1e-5)


def test_t_test_degenerate_cases():
    assert paired_t_test([0.3, 0.4], [0.3, 0.4]).p == 1.0  # no difference at all
    assert paired_t_test([0.3, 0.4], [0.1, 0.2]) == paired_t_test([0.6, 0.7], [0.4, 0.5])  # same difference
    assert (
        paired_t_test([0.3, 0.4], [0.1, 0.2]).t == math.inf and paired_t_test([0.3, 0.4], [0.1, 0.2]).p == 0.0
    )
    assert math.isnan(paired_t_test([0.3], [0.1]).p)  # one pair: no test


def test_compare_tests_wins_and_holm_over_runs_and_metrics():
    comparison = compare(
        {"base": BASELINE, "A": RUN_A, "B": BASELINE}, "base", QRELS, ["RR@10", "P@1"], alpha=0.05
    )
    assert comparison.runs == ["base", "A", "B"]
    rr_a = comparison.test("A", "RR@10")
    # q1 tie, q2 q3 q5 wins, q4 a loss
    assert (rr_a.wins, rr_a.ties, rr_a.losses, rr_a.n) == (3, 1, 1, 5)
    assert rr_a.mean_diff == pytest.approx((0 + 0.5 + 0.75 - 0.5 + 0.8) / 5)
    assert rr_a.t == pytest.approx(paired_t_test([1, 1, 1, 0.5, 1], [1, 0.5, 0.25, 1, 0.2]).t)
    # P@1: baseline [1,0,0,1,0], A [1,1,1,0,1] -> 3 wins, 1 tie, 1 loss
    p1_a = comparison.test("A", "P@1")
    assert (p1_a.wins, p1_a.ties, p1_a.losses) == (3, 1, 1)
    same = comparison.test("B", "RR@10")
    assert (same.wins, same.ties, same.losses, same.p) == (0, 5, 0, 1.0)
    # Holm over all four (run, metric) tests together
    raw = [t.p for t in comparison.tests]
    assert [t.p_holm for t in comparison.tests] == pytest.approx(holm_bonferroni(raw))
    assert all(t.significant == (t.p_holm <= 0.05) for t in comparison.tests)
    assert comparison.means["A"]["RR@10"] == pytest.approx(4.5 / 5)


def test_markdown_marks_significant_results():
    # 12 queries where the run always finds the relevant doc first and the baseline at rank 2: p ~ 0.
    queries = [f"q{i}" for i in range(12)]
    base = ranked_at(dict.fromkeys(queries, 2))
    better = ranked_at(dict.fromkeys(queries, 1))
    # the difference is the same on every query: t = inf, p = 0
    comparison = compare({"bm25": base, "new": better}, "bm25", [Qrel(q, "rel", 1) for q in queries], "RR@10")
    text = comparison.to_markdown()
    assert "| bm25 (baseline) | 0.5000 |" in text
    assert "| new | 1.0000† (p=0.0e+00) |" in text
    assert "12/0/0" in text


def test_per_query_csv(tmp_path):
    comparison = compare({"base": BASELINE, "A": RUN_A}, "base", QRELS, ["RR@10"])
    path = tmp_path / "pq.csv"
    comparison.write_per_query_csv(path)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["metric", "query_id", "base", "A"]
    assert rows[1] == ["RR@10", "q1", "1.0", "1.0"] and rows[3] == ["RR@10", "q3", "0.25", "1.0"]
    assert len(rows) == 1 + 5


def test_baseline_not_among_runs_is_an_error():
    with pytest.raises(ValueError, match=r"baseline 'bm25' among the runs, found runs \['A', 'base'\]"):
        compare({"base": BASELINE, "A": RUN_A}, "bm25", QRELS, "RR@10")


def test_runs_on_different_queries_are_noted_and_refused_when_strict(caplog):
    # A run of one query beside a baseline of five: its mean is over another query set.
    one_query = ranked_at({"q1": 1})
    runs = {"base": BASELINE, "A": one_query}
    with caplog.at_level("WARNING", logger="auxir.evaluation.compare"):
        comparison = compare(runs, "base", QRELS, "RR@10")
    assert comparison.notes[0].startswith(
        "runs evaluated on different queries: baseline 'base' on 5, 'A' on 1 (0 not in the baseline's, "
        "4 of the baseline's missing)"
    )
    assert "runs evaluated on different queries" in caplog.text
    text = comparison.to_markdown()
    assert "**Warning:** runs evaluated on different queries" in text
    # six documents a query, one of them judged: Judged@10 = 1/6
    assert "| base | 5 | 5/5 | 0.1667 |" in text and "| A | 1 | 1/1 | 0.1667 |" in text
    with pytest.raises(ValueError, match=r"expected every run evaluated on the same queries, found runs"):
        compare(runs, "base", QRELS, "RR@10", strict=True)
    # missing="zero" counts every judged query for every run: the means are over the same queries again.
    assert compare(runs, "base", QRELS, "RR@10", missing="zero", strict=True).notes == []


def test_run_barely_judged_is_noted():
    unjudged = [ScoredDoc(q, f"other{i}", float(-i)) for q in QUERIES for i in range(10)]
    comparison = compare({"base": BASELINE, "A": unjudged}, "base", QRELS, "RR@10")
    assert comparison.notes == [
        "run 'A': Judged@10 is 0.0000 (< 0.02): its top documents are almost all unjudged, so its scores "
        "say little (a run of another collection, or ids that do not match?)"
    ]
    assert "| A | 5 | 5/5 | 0.0000 |" in comparison.to_markdown()
