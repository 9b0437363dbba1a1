"""Score fusion: hand-computed normalised and fused scores, a weight chosen by hand, and ``auxir fuse``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import auxir.cli
from auxir.data.records import Qrel, ScoredDoc
from auxir.data.trec import read_run
from auxir.evaluation.fusion import DEFAULT_GRID, FusionChoice, choose_weight, fuse, normalize

R5 = math.sqrt(5)
R15 = math.sqrt(1.5)

# q1: d4 is not in the first stage; q2: all reranked scores equal; q3: not in the first stage at all.
RERANKED = [
    ScoredDoc("q1", "d1", 6.0),
    ScoredDoc("q1", "d2", 4.0),
    ScoredDoc("q1", "d3", 2.0),
    ScoredDoc("q1", "d4", 0.0),
    ScoredDoc("q2", "d1", 5.0),
    ScoredDoc("q2", "d2", 5.0),
    ScoredDoc("q2", "d3", 5.0),
    ScoredDoc("q3", "d1", 1.0),
    ScoredDoc("q3", "d2", 3.0),
]
# q1's d9 and all of q4 are only in the first stage: never added.
FIRST_STAGE = [
    ScoredDoc("q1", "d1", 10.0),
    ScoredDoc("q1", "d2", 30.0),
    ScoredDoc("q1", "d3", 20.0),
    ScoredDoc("q1", "d9", 40.0),
    ScoredDoc("q2", "d1", 1.0),
    ScoredDoc("q2", "d2", 2.0),
    ScoredDoc("q2", "d3", 3.0),
    ScoredDoc("q4", "d1", 1.0),
]


def scores(run: list[ScoredDoc]) -> list[float]:
    return [s.score for s in run]


def test_normalize_minmax_and_zscore_by_hand():
    # q1 6,4,2,0: range 6; mean 3, deviations 3,1,-1,-3, population variance 5. q2 all equal -> 0.
    # q3 1,3: mean 2, std 1.
    assert scores(normalize(RERANKED, "minmax")) == pytest.approx([1, 2 / 3, 1 / 3, 0, 0, 0, 0, 0, 1])
    assert scores(normalize(RERANKED, "zscore")) == pytest.approx(
        [3 / R5, 1 / R5, -1 / R5, -3 / R5, 0, 0, 0, -1, 1]
    )
    # q1 10,30,20,40: range 30; mean 25, deviations -15,5,-5,15, std 5·sqrt(5). q2 1,2,3: std sqrt(2/3).
    assert scores(normalize(FIRST_STAGE, "zscore")) == pytest.approx(
        [-3 / R5, 1 / R5, -1 / R5, 3 / R5, -R15, 0, R15, 0]
    )
    assert [(s.query_id, s.doc_id) for s in normalize(RERANKED, "minmax")] == [
        (s.query_id, s.doc_id) for s in RERANKED
    ]


def test_normalize_equal_floats_are_flat_not_rounding_noise():
    run = [ScoredDoc("q", f"d{i}", 0.1) for i in range(3)]  # mean of 0.1s is not exactly 0.1
    assert scores(normalize(run, "zscore")) == [0.0, 0.0, 0.0]
    assert normalize([], "minmax") == []


def test_fuse_minmax_by_hand():
    # q1: reranked 1, 2/3, 1/3, 0; first stage (min 10, max 40) 0, 2/3, 1/3 and d4 the minimum, 0.
    # q2: reranked 0, 0, 0; first stage 0, .5, 1. q3: reranked 0, 1; no first stage -> 0.
    fused = fuse(RERANKED, FIRST_STAGE, weight=0.25)
    assert [(s.query_id, s.doc_id) for s in fused] == [(s.query_id, s.doc_id) for s in RERANKED]
    assert scores(fused) == pytest.approx([0.25, 2 / 3, 1 / 3, 0, 0, 0.375, 0.75, 0, 0.25])


def test_fuse_zscore_by_hand():
    # q1: reranked 3,1,-1,-3 over sqrt(5); first stage -3,1,-1 over sqrt(5), d4 gets q1's minimum -3/sqrt(5)
    # (d9's 3/sqrt(5) is not added). q2: 0.75·(-sqrt(1.5), 0, sqrt(1.5)). q3: 0.25·(-1, 1).
    fused = fuse(RERANKED, FIRST_STAGE, weight=0.25, method="zscore")
    assert scores(fused) == pytest.approx(
        [-1.5 / R5, 1 / R5, -1 / R5, -3 / R5, -0.75 * R15, 0, 0.75 * R15, -0.25, 0.25]
    )


def test_fuse_weights_one_and_zero_are_the_normalised_runs():
    assert scores(fuse(RERANKED, FIRST_STAGE, 1.0)) == scores(normalize(RERANKED, "minmax"))
    assert scores(fuse(RERANKED, FIRST_STAGE, 0.0)) == pytest.approx([0, 2 / 3, 1 / 3, 0, 0, 0.5, 1, 0, 0])


@pytest.mark.parametrize("weight", [-0.1, 1.5, math.nan])
def test_weight_out_of_range(weight):
    with pytest.raises(ValueError, match=r"expected a weight in \[0, 1\]"):
        fuse(RERANKED, FIRST_STAGE, weight)
    with pytest.raises(ValueError, match=r"expected a weight in \[0, 1\]"):
        choose_weight(RERANKED, FIRST_STAGE, [Qrel("q1", "d1", 1)], grid=[0.5, weight])


def test_bad_inputs():
    with pytest.raises(
        ValueError, match="reranked run with at least one scored document, found an empty run"
    ):
        choose_weight([], FIRST_STAGE, [Qrel("q1", "d1", 1)])
    with pytest.raises(ValueError, match="first-stage run with at least one scored document"):
        choose_weight(RERANKED, [], [Qrel("q1", "d1", 1)])
    with pytest.raises(ValueError, match="share query ids, found none in common"):
        fuse(RERANKED, [ScoredDoc("q9", "d1", 1.0)], 0.5)
    with pytest.raises(ValueError, match="once per query in the reranked run, found duplicates"):
        fuse(RERANKED + RERANKED[:1], FIRST_STAGE, 0.5)
    with pytest.raises(ValueError, match="expected method 'minmax' or 'zscore', found 'rank'"):
        fuse(RERANKED, FIRST_STAGE, 0.5, method="rank")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected finite scores, found inf"):
        normalize([ScoredDoc("q1", "d1", math.inf)], "minmax")


# The relevant doc r of both queries: the reranker has it first for q1 only, the first stage for q2 only.
# Min-max normalised, with x the other contender:
#   q1: reranked r 1, x 0, y .5; first stage x 1, r .8, y 0 -> r = .8 + .2w, x = 1 - w: r first iff w > 1/6
#   q2: reranked x 1, r .8, y 0; first stage r 1, x 0, y .5 -> r = 1 - .2w, x = w:     r first iff w < 5/6
# So nDCG@10 is 1 for w in 0.2..0.8 and (1 + 1/log2(3))/2 elsewhere; the tie goes to the larger weight, 0.8.
VALID_RERANKED = [
    ScoredDoc("q1", "r", 10.0),
    ScoredDoc("q1", "x", 0.0),
    ScoredDoc("q1", "y", 5.0),
    ScoredDoc("q2", "x", 3.0),
    ScoredDoc("q2", "r", 2.6),
    ScoredDoc("q2", "y", 1.0),
]
VALID_FIRST_STAGE = [
    ScoredDoc("q1", "x", 25.0),
    ScoredDoc("q1", "r", 21.0),
    ScoredDoc("q1", "y", 5.0),
    ScoredDoc("q2", "r", 12.0),
    ScoredDoc("q2", "x", 2.0),
    ScoredDoc("q2", "y", 7.0),
]
VALID_QRELS = [Qrel("q1", "r", 1), Qrel("q2", "r", 1)]
SECOND_PLACE = (1 + 1 / math.log2(3)) / 2


def test_choose_weight_by_hand():
    choice = choose_weight(VALID_RERANKED, VALID_FIRST_STAGE, VALID_QRELS)
    assert isinstance(choice, FusionChoice)
    assert (choice.weight, choice.method, choice.metric) == (0.8, "minmax", "nDCG@10")
    assert choice.value == pytest.approx(1.0)
    assert list(choice.curve) == list(DEFAULT_GRID)
    expected = {w: 1.0 if 0.2 <= w <= 0.8 else SECOND_PLACE for w in DEFAULT_GRID}
    assert choice.curve == pytest.approx(expected)


def test_choose_weight_ties_go_to_the_reranker():
    # Both runs rank r first for q1: every weight scores 1, so the largest weight of the grid wins.
    choice = choose_weight(
        VALID_RERANKED[:3], VALID_RERANKED[:3], VALID_QRELS, metric="RR@10", grid=[0.3, 0.1]
    )
    assert (choice.weight, choice.value, choice.curve) == (0.3, 1.0, {0.3: 1.0, 0.1: 1.0})


def write_trec(path: Path, run: list[ScoredDoc]) -> Path:
    path.write_text("".join(f"{s.query_id} Q0 {s.doc_id} 0 {s.score!r} t\n" for s in run))
    return path


@pytest.fixture
def fuse_files(tmp_path: Path) -> Path:
    """A BEIR directory judging r for q1 and q2 (split ``dev``), and the validation runs above as files."""
    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    docs = [{"_id": d, "title": "", "text": f"document {d}"} for d in ("r", "x", "y")]
    (data / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": q, "text": f"query {q}"} for q in ("q1", "q2")]
    (data / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tr\t1\nq2\tr\t1\n")
    write_trec(tmp_path / "rr.trec", VALID_RERANKED)
    write_trec(tmp_path / "bm25.trec", VALID_FIRST_STAGE)
    return tmp_path


def test_cli_chooses_the_weight_on_validation_and_fuses(fuse_files, capsys):
    out = fuse_files / "fused.trec"
    rr, bm25 = str(fuse_files / "rr.trec"), str(fuse_files / "bm25.trec")
    code = auxir.cli.main(
        ["fuse", "--reranked", rr, "--first-stage", bm25, "--out", str(out),
         "--choose-on", rr, bm25, "--dataset", str(fuse_files / "beir"), "--split", "dev"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "  0.80  1.0000  <- chosen" in printed and "  1.00  0.8155" in printed
    assert "chosen weight: 0.8 (nDCG@10 1.0000 on dev)" in printed
    fused = read_run(out)
    # At w = 0.8: q1 r .96, y .4, x .2; q2 r .84, x .8, y .1 -- written in rank order.
    assert [(s.query_id, s.doc_id) for s in fused] == [
        ("q1", "r"), ("q1", "y"), ("q1", "x"), ("q2", "r"), ("q2", "x"), ("q2", "y")
    ]  # fmt: skip
    assert scores(fused) == pytest.approx([0.96, 0.4, 0.2, 0.84, 0.8, 0.1])


def test_cli_fixed_weight(fuse_files):
    out = fuse_files / "fused.trec"
    code = auxir.cli.main(
        ["fuse", "--reranked", str(fuse_files / "rr.trec"), "--first-stage", str(fuse_files / "bm25.trec"),
         "--out", str(out), "--weight", "0", "--method", "zscore"]
    )  # fmt: skip
    assert code == 0
    assert [s.doc_id for s in read_run(out)] == ["x", "r", "y", "r", "y", "x"]  # the first stage's order


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weight", "1.5"], r"expected a weight in [0, 1], found 1.5"),
        (["--choose-on", "a.trec", "b.trec"], "--choose-on needs --dataset"),
    ],
)
def test_cli_errors_exit_2(fuse_files, capsys, extra, message):
    out = fuse_files / "fused.trec"
    code = auxir.cli.main(
        ["fuse", "--reranked", str(fuse_files / "rr.trec"), "--first-stage", str(fuse_files / "bm25.trec"),
         "--out", str(out), *extra]
    )  # fmt: skip
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()
