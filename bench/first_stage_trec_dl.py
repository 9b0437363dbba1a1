"""Evaluate the six rank_llm first-stage runs of TREC DL 2019 (passage) and write them into the results doc.

    .venv/bin/python bench/first_stage_trec_dl.py [--data ../shared/data/trec-dl-2019] [--out docs/results/first-stage.md]

Writes (or replaces) the section ``## TREC DL 2019 passage: the six runs`` of ``--out`` and leaves every other
section of the file as it is. Metrics: nDCG@10 (graded), RR@10 and R@100 both strict (grade >= 2, TREC DL /
Anserini ``-l 2``) and lenient (grade >= 1); every run is tested against BM25 (paired t-test, Holm–Bonferroni
over all runs x metrics). The numbers are also checked against published figures, and differences are
written into the doc.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import auxir  # noqa: F401
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(REPO / "src"))

import ir_measures  # noqa: E402

from auxir.data.dataset import load_dataset  # noqa: E402
from auxir.data.trec import read_run  # noqa: E402
from auxir.evaluation.compare import compare  # noqa: E402
from auxir.evaluation.metrics import evaluate  # noqa: E402
from auxir.io import atomic_write  # noqa: E402

HEADING = "## TREC DL 2019 passage: the six runs"
METRICS = ["nDCG@10", "RR(rel=2)@10", "RR@10", "R(rel=2)@100", "R@100"]
BASELINE = "BM25"
MACHINE = "2-core CPU, this dev box"

# Published figures on DL19 passage (43 queries, NIST qrels): (metric, value, source).
PYSERINI_2CR = "Pyserini 2CR, `pyserini/2cr/msmarco-v1-passage.yaml`"
ANSERINI = "Anserini, `docs/regressions/regressions-dl19-passage.md`"
PUBLISHED = {
    "BM25": [
        ("nDCG@10", 0.5058, f"{ANSERINI}; {PYSERINI_2CR} (bm25-default)"),
        ("R(rel=2)@100", 0.4910, ANSERINI),
    ],
    "BM25_RM3": [
        ("nDCG@10", 0.5216, f"{ANSERINI}; {PYSERINI_2CR} (bm25-rm3-default)"),
        ("R(rel=2)@100", 0.5259, ANSERINI),
    ],
    "D_BERT_KD_TASB": [("nDCG@10", 0.7210, f"{PYSERINI_2CR} (distilbert-kd-tasb)")],
    "OPEN_AI_ADA2": [("nDCG@10", 0.7035, f"{PYSERINI_2CR} (openai-ada2)")],
    "SPLADE_P_P_ENSEMBLE_DISTIL": [("nDCG@10", 0.7308, f"{PYSERINI_2CR} (splade-pp-ed-onnx)")],
    "REP_LLAMA": [
        ("nDCG@10", 0.7384, "the data set's README (its converter, trec_eval-style; not a published score)")
    ],
}
# Published R@1000 (Anserini/Pyserini), for the note on truncated runs.
PUBLISHED_R1000 = {"BM25": 0.7501, "BM25_RM3": 0.8136, "D_BERT_KD_TASB": 0.8406, "OPEN_AI_ADA2": 0.8629,
                   "SPLADE_P_P_ENSEMBLE_DISTIL": 0.8728}  # fmt: skip
TOLERANCE = 0.0005


def replace_section(document: str, section: str) -> str:
    """Put ``section`` (which starts with HEADING) in place of the existing one, or append it."""
    section = section.rstrip("\n") + "\n"
    if HEADING not in document:
        prefix = document.rstrip("\n") + "\n\n" if document.strip() else "# First-stage results\n\n"
        return prefix + section
    start = document.index(HEADING)
    following = document.find("\n## ", start + len(HEADING))
    rest = "" if following < 0 else "\n" + document[following + 1 :]
    return document[:start] + section + rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "trec-dl-2019")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "first-stage.md")
    parser.add_argument(
        "--per-query", type=Path, default=None, help="also write per-query values to this CSV"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    dataset = load_dataset(args.data)
    qrels = dataset.qrels("test")
    runs = {name.removesuffix(".test"): read_run(path) for name, path in sorted(dataset.runs.items())}
    comparison = compare(runs, BASELINE, qrels, METRICS, alpha=0.05)
    judged = {name: evaluate(run, qrels, ["Judged@10"]).aggregate["Judged@10"] for name, run in runs.items()}
    depth = {
        name: max(sum(1 for s in run if s.query_id == q) for q in {s.query_id for s in run})
        for name, run in runs.items()
    }
    # What a plain ir_measures call gives for RR@10: its msmarco provider breaks ties by doc id ascending.
    plain_rr = {
        name: ir_measures.calc_aggregate([ir_measures.parse_measure("RR(rel=2)@10")], qrels, run)
        for name, run in runs.items()
    }
    plain_rr = {name: next(iter(values.values())) for name, values in plain_rr.items()}
    seconds = time.perf_counter() - started
    if args.per_query is not None:
        comparison.write_per_query_csv(args.per_query)

    means = comparison.means
    n_queries = len(comparison.results[BASELINE].query_ids)
    checks = []
    for name, entries in PUBLISHED.items():
        for metric, value, source in entries:
            ours = means[name][metric]
            verdict = "matches" if abs(ours - value) <= TOLERANCE else f"**differs by {ours - value:+.4f}**"
            checks.append(f"| {name} | {metric} | {ours:.4f} | {value:.4f} | {verdict} | {source} |")
    tie_notes = [
        f"{name}: {means[name]['RR(rel=2)@10']:.4f} here, {plain_rr[name]:.4f} from a plain `ir_measures` call"
        for name in runs
        if abs(plain_rr[name] - means[name]["RR(rel=2)@10"]) > 1e-9
    ]
    if tie_notes:
        tie_text = (
            "The tie rule matters for strict RR@10: "
            + "; ".join(tie_notes)
            + ". ir_measures computes RR@k with"
            " its MS MARCO provider, which breaks ties by doc id ascending; auxir fixes trec_eval's order first."
        )
    else:
        tie_text = (
            "No run's strict RR@10 changes between trec_eval's tie rule and ir_measures' MS MARCO provider."
        )
    by_metric = {
        metric: [t.run for t in comparison.tests if t.metric == metric and t.significant]
        for metric in METRICS
    }
    significant = "; ".join(
        f"`{metric}` {', '.join(names) if names else 'none'}" for metric, names in by_metric.items()
    )
    command = shlex.join(["python", *(sys.argv if argv is None else [sys.argv[0], *argv])])
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("ir_measures", "pytrec-eval-terrier", "scipy")
    )

    section = f"""{HEADING}

rank_llm's six first-stage runs on the {n_queries} judged TREC DL 2019 passage queries (NIST graded qrels,
`../shared/data/trec-dl-2019`), evaluated by `auxir.evaluation` (ir_measures over pytrec_eval) and tested
against BM25.

- Command: `{command}` (from the repository root, with `.venv` active)
- Machine: {MACHINE}; evaluation of all six runs took {seconds:.1f} s ({versions})
- Date: {datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")} (UTC)
- Metrics: `nDCG@10` uses the grades 0–3 as gains (trec_eval `ndcg_cut.10`). `RR(rel=2)@10` and `R(rel=2)@100` are
  strict (grade ≥ 2 relevant, `trec_eval -l 2`, the TREC DL / Anserini convention); `RR@10` and `R@100` are
  lenient (grade ≥ 1). Every run covers all {n_queries} queries, so `trec_eval -c` would change nothing. Ties in
  score are broken as trec_eval does (doc id descending) for every metric.

{comparison.to_markdown(details=True)}
### Checks against published figures

| run | metric | here | published | | source |
|---|---|---:|---:|---|---|
{chr(10).join(checks)}

### Notes

- **The runs are truncated.** Five runs hold the top {depth[BASELINE]} per query (rank_llm keeps what it reranks),
  REP_LLAMA the top {depth["REP_LLAMA"]}. R@100 is therefore comparable across all six, but the published
  R@1000 figures cannot be reproduced from these files (e.g. BM25: {PUBLISHED_R1000["BM25"]:.4f} published; here
  R(rel=2)@1000 equals R(rel=2)@100 = {means["BM25"]["R(rel=2)@100"]:.4f}, since nothing below rank 100 exists).
  Metrics at depth ≤ 100 (all of the above) are unaffected, and they match the published ones where those exist.
- **No published figure was found offline for REP_LLAMA on this run file**; the check above is against the
  data set's README, whose converter computes nDCG@10 the same trec_eval way. REP_LLAMA's scores have three
  decimals, so it has many ties and its numbers depend on the tie rule.
  {tie_text}
- **Judged@10** (share of the top 10 that NIST judged): {", ".join(f"{name} {value:.3f}" for name, value in judged.items())}.
  The 2019 pools predate these learned retrievers: the passages they bring up that nobody judged count as
  non-relevant, so their nDCG@10 / RR@10 here are lower bounds. Any bias favours BM25, whose top 10 is fully
  judged.
- With {n_queries} queries and {len(comparison.tests)} corrected comparisons only large differences reach
  significance. Significant against BM25: {significant}.
"""
    document = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    with atomic_write(args.out) as handle:
        handle.write(replace_section(document, section))
    print(comparison.to_markdown(details=False), end="")
    print(f"wrote {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
