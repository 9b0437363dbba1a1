"""Render the SJTF result files under docs/results/sjtf/ as the markdown tables of docs/results/sjtf.md.

python bench/sjtf_report.py docs/results/sjtf
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def summary_tables(path: Path) -> str:
    data = json.loads(path.read_text())
    out = []
    for s in data["summaries"]:
        metrics = [k for k in s["rows"][0] if k != "variant"]
        seeds = sorted({r["seed"] for r in data["records"] if r["collection"] == s["collection"]})
        out.append(f"**{s['collection']}** (seeds {', '.join(map(str, seeds))}; mean ± sd over seeds)\n")
        out.append("| model | " + " | ".join(metrics) + " |")
        out.append("|---|" + "---:|" * len(metrics))
        out.append("| BM25 (first stage) | " + " | ".join(f"{s['bm25'][m]:.4f}" for m in metrics) + " |")
        for row in s["rows"]:
            cells = []
            for m in metrics:
                mean, sd = row[m]
                test = next(
                    (t for t in s["tests"] if t["variant"] == row["variant"] and t["metric"] == m), None
                )
                mark = ""
                if test:
                    mark = f" (p={test['p_holm']:.3g}{'†' if test['p_holm'] <= 0.05 else ''})"
                cells.append(f"{mean:.4f} ± {sd:.4f}{mark}")
            out.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def records_table(path: Path) -> str:
    rows: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows.setdefault(r["variant"], []).append(r)
    metrics = list(next(iter(rows.values()))[0]["reranked"])
    first = next(iter(rows.values()))[0]["first_stage"]
    out = ["| model | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---:|" * len(metrics)]
    out.append("| BM25 (first stage) | – | " + " | ".join(f"{first[m]:.4f}" for m in metrics) + " |")
    for variant, rs in rows.items():
        cells = []
        for m in metrics:
            values = [r["reranked"][m] for r in rs]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {sd:.4f}")
        out.append(f"| {variant} | {', '.join(str(r['seed']) for r in rs)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/sjtf")
    for name in ("scifact.json", "scifact-decoder-diagnostics.json", "cranfield-vaswani-cv.json"):
        print(f"### {name}\n\n{summary_tables(folder / name)}")
    for name in ("nfcorpus-records.jsonl", "nfcorpus-records-h100.jsonl"):
        print(f"### {name}\n\n{records_table(folder / name)}\n")


if __name__ == "__main__":
    main()
