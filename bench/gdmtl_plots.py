"""GDMTL's figures from run folders: the paper's Figure 8 (scores of relevant and non-relevant documents,
ranking-only beside GDMTL) and σ² of the uncertainty weighting over training.

    python bench/gdmtl_plots.py --dataset ../shared/data/scifact \
        --fig8 "ranking only=/tmp/gx/gdmtl-extras/tuned" "GDMTL=/tmp/gx/gdmtl-extras/gdmtl" \
        --sigma "SciFact GDMTL=/tmp/g6/gdmtl/scifact/gdmtl/seed*" \
        --sigma "PubMedQA GDMTL+=/tmp/g6/gdmtl/pubmedqa/gdmtl_plus/seed*" \
        --sigma "SciFact GDMTL, summed loss=/tmp/g4/gdmtl/scifact/gdmtl/seed*" \
        --sigma "PubMedQA GDMTL+, summed loss=/tmp/g4/gdmtl/pubmedqa/gdmtl_plus/seed*" \
        --out docs/results/gdmtl

Run folders are ``auxir train`` outputs (``reranked.trec``, ``train_log.jsonl``); the device calls' folders
were copied back as tarballs (docs/results/gdmtl.md). Writes ``fig8-score-distributions.png``,
``fig8-stats.json`` and ``sigma2.png``. Relevant = judged above 0; every other document of a query's
reranked top 100 counts as non-relevant. Scores of different models live on different scales, so the
statistics add AUC (relevant above non-relevant, pooled, and mean per query).
"""

from __future__ import annotations

import argparse
import glob
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import mannwhitneyu

from auxir.data.dataset import load_dataset
from auxir.data.trec import read_run


def split_scores(run_dir: Path, relevant: dict[str, set[str]]) -> tuple[np.ndarray, np.ndarray, float]:
    """Scores of relevant and non-relevant documents, and the mean per-query AUC."""
    by_query: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for s in read_run(run_dir / "reranked.trec"):
        if s.query_id in relevant:
            by_query[s.query_id].append((s.score, s.doc_id in relevant[s.query_id]))
    rel, non, aucs = [], [], []
    for rows in by_query.values():
        r = [x for x, is_rel in rows if is_rel]
        n = [x for x, is_rel in rows if not is_rel]
        rel += r
        non += n
        if r and n:
            aucs.append(mannwhitneyu(r, n).statistic / (len(r) * len(n)))
    return np.array(rel), np.array(non), float(np.mean(aucs))


def figure8(dataset: str, runs: list[tuple[str, Path]], out: Path) -> dict:
    ds = load_dataset(dataset)
    relevant: dict[str, set[str]] = defaultdict(set)
    for q in ds.qrels("test"):
        if q.relevance > 0:
            relevant[q.query_id].add(q.doc_id)
    fig = Figure(figsize=(5 * len(runs), 3.6), layout="constrained")
    stats = {}
    for i, (label, run_dir) in enumerate(runs):
        rel, non, per_query_auc = split_scores(run_dir, relevant)
        ax = fig.add_subplot(1, len(runs), i + 1)
        bins = np.linspace(min(rel.min(), non.min()), max(rel.max(), non.max()), 50)
        ax.hist(
            non, bins=bins, density=True, alpha=0.55, label=f"non-relevant ({len(non)})", color="tab:gray"
        )
        ax.hist(rel, bins=bins, density=True, alpha=0.65, label=f"relevant ({len(rel)})", color="tab:green")
        ax.set_title(label)
        ax.set_xlabel("reranker score")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        pooled = mannwhitneyu(rel, non).statistic / (len(rel) * len(non))
        stats[label] = {
            "run": str(run_dir),
            "relevant": {"n": len(rel), "mean": float(rel.mean()), "sd": float(rel.std())},
            "non_relevant": {"n": len(non), "mean": float(non.mean()), "sd": float(non.std())},
            "auc_pooled": float(pooled),
            "auc_mean_per_query": per_query_auc,
        }
    fig.suptitle("SciFact test, BM25 top 100 reranked: scores of relevant and non-relevant documents")
    FigureCanvasAgg(fig).print_png(out / "fig8-score-distributions.png")
    (out / "fig8-stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats


def sigma_plot(panels: list[tuple[str, list[Path]]], out: Path) -> list[str]:
    fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    styles = ["-", "--", ":", "-."]
    colours = {
        "listwise_softmax": "tab:blue",
        "query_generation": "tab:orange",
        "answer_generation": "tab:red",
    }
    lines = []
    for i, (label, folders) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1, sharey=fig.axes[0] if fig.axes else None)
        for j, folder in enumerate(folders):
            rows = [json.loads(x) for x in (folder / "train_log.jsonl").read_text().splitlines()]
            rows = [r for r in rows if any(k.startswith("sigma2/") for k in r)]
            for key in sorted(k for k in rows[0] if k.startswith("sigma2/")):
                name = key.split("/", 1)[1]
                ax.plot(
                    [r["step"] for r in rows],
                    [r[key] for r in rows],
                    styles[j % len(styles)],
                    color=colours.get(name, "black"),
                    label=name if j == 0 else None,
                )
                lines.append(f"{label} | {folder.name} | {name} | {rows[0][key]:.2f} → {rows[-1][key]:.2f}")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("σ²")
        ax.legend(fontsize=7)
    fig.suptitle("Uncertainty weighting: σ² per loss over training (line style = seed)")
    FigureCanvasAgg(fig).print_png(out / "sigma2.png")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--fig8", nargs=2, metavar="LABEL=RUN_DIR", required=True)
    parser.add_argument("--sigma", action="append", default=[], metavar="LABEL=GLOB")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.fig8]
    for label, s in figure8(args.dataset, runs, args.out).items():
        r, n = s["relevant"], s["non_relevant"]
        print(
            f"{label}: relevant {r['mean']:.2f} ± {r['sd']:.2f}, non-relevant {n['mean']:.2f} ± {n['sd']:.2f}, "
            f"AUC pooled {s['auc_pooled']:.3f}, per query {s['auc_mean_per_query']:.3f}"
        )
    panels = [
        (i.split("=", 1)[0], sorted(Path(p) for p in glob.glob(i.split("=", 1)[1]))) for i in args.sigma
    ]
    for line in sigma_plot(panels, args.out):
        print(line)


if __name__ == "__main__":
    main()
