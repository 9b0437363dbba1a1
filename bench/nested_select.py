"""Nested cross-validation: per fold, the setting its own validation queries prefer, tested on its test fold.

A collection without a training split (FIRE 2017) is run as 5 folds, each training on three, validating on
one and testing on one. A search over one fold's validation queries would choose with queries that other
folds test on. Here each fold chooses among the grid's settings by *its* validation score (``best_valid``
in metrics.json), and only that setting's test-fold results enter the tuned run, so every test query is
scored by a model chosen without it. Ties go to the first setting listed.

    python bench/nested_select.py --results qbd-s0.json.gz qbd-lr.json.gz --out qbd-nested.json.gz \\
        --choose qbd_tuned=qbd,qbd_lr3e-5 --choose ranking_only_tuned=ranking_only,ranking_only_lr3e-5

The output is a results file like bench/baselines.py's (one job per fold and seed, variant renamed, its
``overrides`` those of the chosen setting, plus ``chosen_from``), so baselines_report.py and
versus_report.py read it beside the others. A fold where some setting of the grid did not finish is left
out (and said).
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path


def load_jobs(paths: list[Path]) -> tuple[list[dict], dict]:
    jobs, header = [], {}
    for path in paths:
        data = json.loads(gzip.open(path, "rt").read())
        header = header or {k: v for k, v in data.items() if k != "jobs"}
        if data["metrics"] != header["metrics"]:
            raise ValueError(f"{path}: metrics {data['metrics']} differ from {header['metrics']}")
        jobs += [j for j in data["jobs"] if j["status"] == "done"]
    return jobs, header


def choose(jobs: list[dict], name: str, grid: list[str]) -> tuple[list[dict], list[str]]:
    """One job per (collection, seed, fold): the grid setting with the best validation score there."""
    cells: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for job in jobs:
        if job["variant"] in grid:
            key = (job["collection"], job["seed"], job["fold"])
            if job["variant"] in cells[key]:
                raise ValueError(f"{name}: two runs of {job['variant']} for {key}")
            cells[key][job["variant"]] = job
    chosen, notes = [], []
    for key in sorted(cells, key=str):
        found = cells[key]
        missing = [v for v in grid if v not in found]
        if missing:
            notes.append(f"{name} {key}: left out, no finished run of {', '.join(missing)}")
            continue
        best = max(grid, key=lambda v: (found[v]["metrics"]["best_valid"], -grid.index(v)))
        job = {
            **found[best],
            "variant": name,
            "chosen": best,
            "chosen_from": {v: found[v]["metrics"]["best_valid"] for v in grid},
        }
        chosen.append(job)
        notes.append(
            f"{name} {key}: {best} (valid "
            + ", ".join(f"{v} {found[v]['metrics']['best_valid']:.4f}" for v in grid)
            + ")"
        )
    return chosen, notes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", nargs="+", type=Path, required=True)
    parser.add_argument("--choose", action="append", required=True, metavar="NAME=V1,V2,...")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    jobs, header = load_jobs(args.results)
    out_jobs = []
    for item in args.choose:
        name, _, grid = item.partition("=")
        if not name or not grid:
            parser.error(f"--choose takes NAME=V1,V2,..., found {item!r}")
        chosen, notes = choose(jobs, name, grid.split(","))
        out_jobs += chosen
        print("\n".join(notes))
    tmp = args.out.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as f:
        json.dump({**header, "jobs": out_jobs}, f)
    tmp.replace(args.out)
    print(f"{len(out_jobs)} chosen runs -> {args.out}")


if __name__ == "__main__":
    main()
