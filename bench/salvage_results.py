"""Rebuild a suite's results.json.gz from the run folders a killed ``bench/baselines.py`` left behind.

    python bench/salvage_results.py /tmp/dense dense OUT.json.gz [WORKERS]

Every ``<collection>/<variant>/seed<n>[/fold<k>]/metrics.json`` is a finished job; its per-query metrics are
recomputed from its runs as ``baselines.py`` does at the end (the random-shuffle floor is left out).
"""

from __future__ import annotations

import gzip
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import baselines


def record(root: Path, metrics: Path, suite: str) -> dict:
    if suite in baselines.SUITE_METRICS:
        baselines.METRICS = baselines.SUITE_METRICS[suite]
    parts = metrics.relative_to(root).parts
    fold = int(parts[3][4:]) if len(parts) > 4 else None
    job = baselines.Job(parts[0], parts[1], int(parts[2][4:]), fold, [], out=str(metrics.parent))
    job.status, job.metrics = "done", json.loads(metrics.read_text())
    result = asdict(job)
    result["per_query"] = baselines.per_query(job)
    print(f"{parts[0]} {parts[1]} seed {job.seed}: {job.metrics['reranked'].get('nDCG@10')}", flush=True)
    return result


def main() -> None:
    root, suite, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    if suite in baselines.SUITE_METRICS:
        baselines.METRICS = baselines.SUITE_METRICS[suite]
    found = sorted(root.glob("*/*/seed*/**/metrics.json"))
    with ProcessPoolExecutor(int(sys.argv[4]) if len(sys.argv) > 4 else 1) as pool:
        records = list(pool.map(record, [root] * len(found), found, [suite] * len(found)))
    summary = {"suite": suite, "metrics": baselines.METRICS, "jobs": records, "shuffled": {}}
    with gzip.open(out, "wt", encoding="utf-8") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    main()
