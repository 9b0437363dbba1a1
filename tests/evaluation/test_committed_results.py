"""The tables of docs/results/scorers.md and qbd.md come from the committed raw results: recompute a few cells
from the per-query values with bench/baselines_report.py's own functions and compare with the text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
sys.path.insert(0, str(ROOT / "bench"))
baselines_report = pytest.importorskip("baselines_report")
from auxir.evaluation.compare import holm_bonferroni  # noqa: E402


def merged(folder: str, names: list[str]) -> dict:
    return baselines_report.merge([baselines_report.load(str(RESULTS / folder / n)) for n in names])


def cell(data: dict, collection: str, variant: str, metric: str, kind: str = "reranked") -> str:
    per_seed = baselines_report.seed_runs(data["jobs"], kind)[(collection, variant)]
    mean, sd, seeds = baselines_report.summary(per_seed, metric)
    return f"| {seeds} | {mean:.4f} ± {sd:.4f}" if seeds > 1 else f"| {seeds} | {mean:.4f}"


def row(doc: str, label: str) -> str:
    return next(line for line in doc.splitlines() if line.startswith(f"| {label} |"))


def test_qbd_table_cells_are_the_raw_results_means() -> None:
    data = merged(
        "qbd",
        [f"qbd-{n}.json.gz" for n in ("s0", "s1", "s2", "long", "long1", "long2")],
    )
    doc = (RESULTS / "qbd.md").read_text()
    for variant in ("ranking_only", "qbd", "cls_firstp", "parade"):
        assert row(doc, variant).startswith(f"| {variant} {cell(data, 'fire2017-legal', variant, 'nDCG@10')}")
    # three seeds of the main comparison, five folds each
    runs = [j for j in data["jobs"] if j["variant"] in ("ranking_only", "qbd") and j["status"] == "done"]
    assert len(runs) == 2 * 3 * 5
    assert "0.1573 ± 0.0050" in row(doc, "qbd") and "0.1494 ± 0.0089" in row(doc, "ranking_only")


def test_scorers_table_cells_are_the_raw_results_means() -> None:
    names = ["cls", "cedr", "pacrr", "parade", "clscran", "n1", "pm", "qm", "p1", "pm1", "pt", "pmt"]
    data = merged("scorers", [f"scorers-{n}.json.gz" for n in names])
    doc = (RESULTS / "scorers.md").read_text()
    nfcorpus = doc[doc.index("## NFCorpus") : doc.index("## Cranfield")]
    cranfield = doc[doc.index("## Cranfield") : doc.index("## Speed")]
    for section, collection in ((nfcorpus, "nfcorpus"), (cranfield, "cranfield")):
        for variant in ("cls", "cls_mqp", "cedr_knrm", "pacrr", "parade", "parade_mqp"):
            assert row(section, variant).startswith(
                f"| {variant} {cell(data, collection, variant, 'nDCG@10')}"
            )
    for variant in ("parade_lr2e-4", "parade_mqp_lr2e-4"):  # the searched learning rates, NFCorpus only
        assert row(nfcorpus, variant).startswith(f"| {variant} {cell(data, 'nfcorpus', variant, 'nDCG@10')}")
    assert (
        "| parade | 2 | 0.1999 ± 0.0408" in nfcorpus and "| parade_lr2e-4 | 3 | 0.1472 ± 0.0038" in nfcorpus
    )
    # every Cranfield variant has all five folds of its seed
    folds = {
        (j["variant"], j["fold"])
        for j in data["jobs"]
        if j["collection"] == "cranfield" and j["status"] == "done"
    }
    assert len(folds) == 8 * 5


def test_qbd_nested_table_is_the_raw_runs() -> None:
    """Each fold row of qbd.md's nested search: test (validation) nDCG@10 of both rates, and the rate chosen."""
    data = merged("qbd", ["qbd-s0.json.gz", "qbd-lr.json.gz", "qbd-lr2.json.gz", "qbd-lr3.json.gz"])
    runs = {
        (j["variant"], j["fold"]): j["metrics"]
        for j in data["jobs"]
        if j["status"] == "done" and j["seed"] == 0 and j["collection"] == "fire2017-legal"
    }
    doc = (RESULTS / "qbd.md").read_text()
    section = doc[doc.index("## Nested learning-rate search") : doc.index("## Setup")]

    def cells(variant: str, fold: int) -> list[str]:
        pair = [runs.get((v, fold)) for v in (variant, f"{variant}_lr3e-5")]
        text = [
            f"{m['reranked']['nDCG@10']:.4f} ({m['best_valid']:.4f})" if m else "out of memory" for m in pair
        ]
        chosen = (
            "—" if None in pair else ("1e-4" if pair[0]["best_valid"] >= pair[1]["best_valid"] else "3e-5")
        )
        return [*text, chosen]

    for fold in range(5):
        expected = [str(fold), *cells("ranking_only", fold), *cells("qbd", fold)]
        assert row(section, str(fold)) == "| " + " | ".join(expected) + " |"
    assert sum(1 for key in runs if key[0].endswith("_lr3e-5")) == 10
    # the tuned runs (bench/nested_select.py's output): one chosen run a fold, and the table's nDCG@10 means
    nested = baselines_report.load(str(RESULTS / "qbd" / "qbd-nested.json.gz"))
    assert sorted((j["variant"], j["fold"]) for j in nested["jobs"]) == sorted(
        (v, f) for v in ("qbd_tuned", "ranking_only_tuned") for f in range(5)
    )
    for job in nested["jobs"]:
        base = job["variant"].removesuffix("_tuned")
        rate = "3e-5" if job["chosen"].endswith("_lr3e-5") else "1e-4"
        assert (
            row(section, str(job["fold"])).strip("| ").split(" | ")[3 if base == "ranking_only" else 6]
            == rate
        )
    tuned = [cell(nested, "fire2017-legal", v, "nDCG@10") for v in ("ranking_only_tuned", "qbd_tuned")]
    assert tuned == ["| 1 | 0.1504", "| 1 | 0.1690"]
    assert row(section, "nDCG@10").startswith("| nDCG@10 | 0.1595 | 0.1583 | 0.1504 | 0.1690 |")


def test_speed_tables_are_the_json_ratios() -> None:
    """Every speed table of scorers.md is bench/scorer_speed.py's report of the JSON files it names."""
    scorer_speed = pytest.importorskip("scorer_speed")
    doc = (RESULTS / "scorers.md").read_text()
    doc = doc[doc.index("## Speed") : doc.index("## How it was run")]
    folder = RESULTS / "scorers"
    for names in (
        ["scorer_speed-h100-clsfirst.json", "scorer_speed-h100-clslast.json"],
        ["scorer_speed-h100-w20-clsfirst.json", "scorer_speed-h100-w20-clslast.json"],
        ["scorer_speed-h200-pinned1.json", "scorer_speed-h200-pinned2.json"],
        ["scorer_speed.json"],
    ):
        assert scorer_speed.report([folder / n for n in names]) in doc
    # the main run: every interaction scorer trains slower than CLS, in both orders
    table = scorer_speed.report(
        [folder / "scorer_speed-h100-clsfirst.json", folder / "scorer_speed-h100-clslast.json"]
    )
    assert "| CEDR-KNRM | 0.80 / 0.75 (**0.78**)" in table and "| PARADE | 0.61 / 0.57 (**0.59**)" in table


def test_gdmtl_wikiqa_table_cells_are_the_raw_results_means() -> None:
    data = merged("gdmtl/wikiqa", ["gdmtl-wq.json.gz", "gdmtl-wq2.json.gz", "gdmtl-wq3.json.gz"])
    doc = (RESULTS / "gdmtl.md").read_text()
    section = doc[doc.index("## WikiQA") : doc.index("## Encoder–decoder variants")]
    labels = {"tuned": "tuned cross-encoder", "gdmtl": "GDMTL", "gdmtl_plus": "GDMTL+ (answer from page)"}
    for variant, label in labels.items():
        per_seed = baselines_report.seed_runs(data["jobs"], "reranked")[("wikiqa-pages", variant)]
        cells = [baselines_report.summary(per_seed, m) for m in ("AP", "RR", "nDCG@10")]
        seeds = ", ".join(str(s) for s in sorted(per_seed))
        text = " | ".join(f"{mean:.4f} ± {sd:.4f}" for mean, sd, _ in cells)
        assert row(section, label).startswith(f"| {label} | {seeds} | {text} |")
    assert "| tuned cross-encoder | 0, 1, 2 | 0.8256 ± 0.0132" in section


def test_sjtf_nfcorpus_seed_by_seed_rows_are_the_raw_runs() -> None:
    """NFCorpus: every variant against tuned, and each balanced variant against its unbalanced twin."""
    names = ["sjtf-nf-ref", "sjtf-nf", "sjtf-nfgr", "sjtf-nfgr2", "sjtf-nfgr3", "sjtf-nfgr4"]
    data = merged("baselines", [f"{n}.json.gz" for n in names])
    runs = baselines_report.seed_runs(data["jobs"], "reranked")
    doc = (RESULTS / "sjtf.md").read_text()
    against_tuned = doc[doc.index("## NFCorpus (train") : doc.index("### NFCorpus, balanced variants")]
    against_twin = doc[doc.index("### NFCorpus, balanced variants") : doc.index("## Cranfield (5-fold CV")]
    twin_p = []
    for task in ("mqp_a0.05", "mqp_a0.2", "mpp_a0.2", "mqp_all_a0.2"):
        for variant in (task, f"{task}_gr"):
            assert (
                baselines_report.seed_by_seed_row(runs, "nfcorpus", variant, "tuned")
                in against_tuned.splitlines()
            )
        twin = baselines_report.seed_by_seed_row(runs, "nfcorpus", f"{task}_gr", task)
        assert twin in against_twin.splitlines()
        twin_p.append(float(twin.split("|")[-2]))
    assert (
        f"0.013\n  uncorrected, {holm_bonferroni(twin_p)[-1]:.2g} after Holm over these four" in against_twin
    )
    assert {v: sorted(s) for (c, v), s in runs.items() if c == "nfcorpus"} == dict.fromkeys(
        SJTF_VARIANTS + ["tuned"], [0, 1, 2]
    )
    for variant in SJTF_VARIANTS:
        assert row(against_tuned, variant).startswith(
            f"| {variant} {cell(data, 'nfcorpus', variant, 'nDCG@10')} (p="
        )
    assert "| mqp_all_a0.2_gr | 3 | 0.2372 ± 0.0070 (p=0.00015†)" in against_tuned
    assert "| mpp_a0.2 | 3 | 0.2301 ± 0.0084 (p=0.068) |" in against_tuned  # not significant after Holm


CRANFIELD_CV0 = [f"sjtf-cranfield0{x}.json.gz" for x in ("", "b", "c", "d")]  # session 12: 39 of 45 runs
CRANFIELD = CRANFIELD_CV0 + [
    f"sjtf-cranfield{x}.json.gz"
    for x in ("0-f1", "0-f2", "0-f4", "1-f01", "1-f23", "1-f4", "1-f4b", "2-f0", "2-f0-b", "2-f12", "2-f34")
]
SJTF_VARIANTS = [v for t in ("mqp_a0.05", "mqp_a0.2", "mpp_a0.2", "mqp_all_a0.2") for v in (t, f"{t}_gr")]


def test_sjtf_cranfield_rows_are_the_raw_runs() -> None:
    """Cranfield, all 3 CV seeds: the table's means, and each variant seed by seed against tuned (alone and
    fused) and each balanced variant against its twin."""
    data = merged("baselines", CRANFIELD)
    finished = [(j["variant"], j["seed"], j["fold"]) for j in data["jobs"] if j["status"] == "done"]
    assert len(finished) == len(set(finished)) == 135  # 9 variants x 3 CV seeds x 5 folds, each once
    doc = (RESULTS / "sjtf.md").read_text()
    section = doc[doc.index("## Cranfield (5-fold CV") : doc.index("## What was not run")]
    lines = section.splitlines()
    for variant in ["tuned", *SJTF_VARIANTS]:
        assert row(section, variant).startswith(f"| {variant} {cell(data, 'cranfield', variant, 'nDCG@10')}")
    reranked, fused = (baselines_report.seed_runs(data["jobs"], kind) for kind in ("reranked", "fused"))
    for variant in SJTF_VARIANTS:
        assert baselines_report.seed_by_seed_row(reranked, "cranfield", variant, "tuned") in lines
        assert baselines_report.seed_by_seed_row(fused, "cranfield", variant, "tuned") in lines
    for task in SJTF_VARIANTS[0::2]:
        assert baselines_report.seed_by_seed_row(reranked, "cranfield", f"{task}_gr", task) in lines
    assert "| mqp_all_a0.2 | 0, 1, 2 | +0.014, +0.002, -0.005 | +0.0034 | 2/0/1 | 99/19/107 | 0.56 |" in lines


def test_sjtf_vaswani_partial_runs_are_what_sjtf_md_says() -> None:
    """Vaswani, CV seed 0 folds 0 and 1 (18 of 135 runs): kept out of the tables; the text's per-fold numbers."""
    data = merged("baselines", ["sjtf-vaswani0-f0.json.gz", "sjtf-vaswani0-f1.json.gz"])
    done = {
        (j["variant"], j["fold"]): j["metrics"]["reranked"]["nDCG@10"]
        for j in data["jobs"]
        if j["status"] == "done"
    }
    assert len(done) == 18 and {v for v, _ in done} == {"tuned", *SJTF_VARIANTS}
    assert (round(done["tuned", 0], 3), round(done["tuned", 1], 3)) == (0.327, 0.454)
    assert all(done[v, 0] > done["tuned", 0] for v in SJTF_VARIANTS if v != "mqp_a0.2_gr")  # above on fold 0
    assert all(done[v, 1] < done["tuned", 1] for v in SJTF_VARIANTS)  # all below on fold 1
    assert round(max(done[v, 0] for v in SJTF_VARIANTS) - done["tuned", 0], 2) == 0.13
    doc = (RESULTS / "sjtf.md").read_text()
    assert "`tuned` has 0.327 on fold 0 and 0.454 on fold 1" in doc
    assert "## Vaswani" not in doc  # no table until a CV seed is whole


def test_baselines_report_seed_by_seed_prints_sjtf_md_rows(capsys, monkeypatch) -> None:
    """The seed-by-seed tables of sjtf.md's Cranfield section come from `baselines_report.py --seed-by-seed`."""
    files = [str(RESULTS / "baselines" / n) for n in CRANFIELD]
    pairs = [arg for t in SJTF_VARIANTS[0::2] for arg in ("--pair", f"{t}_gr:{t}")]
    argv = ["baselines_report.py", "--merge", *files, "--reference", "tuned", "--seed-by-seed", *pairs]
    monkeypatch.setattr(sys, "argv", argv)
    baselines_report.main()
    out = capsys.readouterr().out
    doc = (RESULTS / "sjtf.md").read_text()
    section = doc[doc.index("## Cranfield (5-fold CV") : doc.index("## What was not run")]
    tables = [line for line in section.splitlines() if line.startswith("| mq") or line.startswith("| mp")]
    assert len(tables) == 16 + 8 + 8 + 4  # main table (alone and fused), seed by seed: alone, fused, twins
    for line in tables:
        assert line in out.splitlines()
    assert "### cranfield: fused, each variant against tuned, seed by seed" in out


@pytest.mark.parametrize(
    ("pair", "message"),
    [("mqp_a0.2_gr", "--pair takes A:B"), ("mqp_a0.2_gr:mqp_a0.3", "do not have: mqp_a0.3")],
)
def test_baselines_report_seed_by_seed_rejects_a_bad_pair(pair, message, capsys, monkeypatch) -> None:
    files = [str(RESULTS / "baselines" / n) for n in CRANFIELD_CV0]
    argv = ["baselines_report.py", *files, "--reference", "tuned", "--seed-by-seed", "--pair", pair]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        baselines_report.main()
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""  # refused before any table is printed


def test_versus_report_delta_on_the_queries_both_runs_have(capsys, monkeypatch) -> None:
    """--delta: a run lacking a fold is compared on the queries it has (session 12's Cranfield files, where
    MQP_ALL lacked fold 2)."""
    import versus_report

    files = [str(RESULTS / "baselines" / n) for n in CRANFIELD_CV0]
    argv = ["versus_report.py", "--reference", *files, "--reference-variant", "tuned", "--runs", *files]
    monkeypatch.setattr(
        sys, "argv", [*argv, "--collection", "cranfield", "--delta", "--only", "mqp_all_a0.2"]
    )
    versus_report.main()
    line = row(capsys.readouterr().out, "mqp_all_a0.2")
    assert "| 0.3488 ± 0.0000 | Δ +0.0127 on 180 queries, p = 0.16, W/T/L 74/38/68 |" in line


def test_madrm_nfcorpus_table_cells_are_the_raw_results_means() -> None:
    data = merged("madrm/nfcorpus", [f"madrm-nf{n}.json.gz" for n in ("", "2", "3", "4")])
    doc = (RESULTS / "madrm.md").read_text()
    section = doc[doc.index("## NFCorpus (train") : doc.index("## Second round")]
    for variant in ("bibert", "mpbert", "madr", "madr_other_cls"):
        assert row(section, variant).startswith(f"| {variant} {cell(data, 'nfcorpus', variant, 'nDCG@10')}")
        seeds = {j["seed"] for j in data["jobs"] if j["variant"] == variant and j["status"] == "done"}
        assert seeds == {0, 1, 2}
    assert "| mpbert | 3 | 0.3397 ± 0.0074" in section and "| bibert | 3 | 0.3210 ± 0.0133" in section


def test_gdmtl_encoder_decoder_table_cells_are_the_raw_results_means() -> None:
    names = [
        "seq2seq-seed0",
        "seq2seq-seed1",
        "gdmtl-s2s-seed2",
        "gdmtl-s2s34",
        "gdmtl-s2s34b",
        "gdmtl-s2s34c",
    ]
    data = merged("gdmtl", [f"{n}.json.gz" for n in names])
    doc = (RESULTS / "gdmtl.md").read_text()
    section = doc[doc.index("## Encoder–decoder variants") : doc.index("## Figure 8")]
    labels = {
        "rank_s": "ranking only, separate (BART_S-like)",
        "gdmtl_s": "GDMTL_S",
        "rank_c": "ranking only, concatenated (BART_C-like)",
        "gdmtl_c": "GDMTL_C",
    }
    runs = baselines_report.seed_runs(data["jobs"], "reranked")
    for variant, label in labels.items():
        assert sorted(runs[("scifact", variant)]) == [0, 1, 2, 3, 4]
        assert row(section, label).startswith(f"| {label} {cell(data, 'scifact', variant, 'nDCG@10')}")
    assert "| GDMTL_S | 5 | 0.4259 ± 0.0467 |" in section
