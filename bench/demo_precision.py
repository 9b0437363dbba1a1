"""The README's main job (``auxir demo``, CPU-sized) in float32 and in bfloat16, one after the other in one
run: wall time of each, their ratio, and each run's nDCG@10 from the demo's own comparison table.

bf16 is the demo's default only on a CPU with native bf16 instructions (AVX512-BF16 or AMX); elsewhere
autocast emulates it, slower than float32. Takes about 16 minutes on a 2-core CPU.

    python bench/demo_precision.py --data ../shared/data/scifact --out outputs/demo-precision
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from auxir.cli.demo import cpu_has_native_bf16
from auxir.io import atomic_write


def ndcg_column(table: str) -> dict[str, str]:
    """Run name → its nDCG@10 cell (the first metric column) from the demo's comparison.md."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[1][:1].isdigit():
            rows[cells[0]] = cells[1]
        if not line.strip() and rows:
            break  # the first table only: the means
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--out", default="outputs/demo-precision")
    args = parser.parse_args()
    out = Path(args.out)
    results = {}
    for precision in ("off", "on"):
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "auxir", "demo", "--data", args.data, "--out", str(out / precision)]
        subprocess.run([*cmd, "--bf16", precision], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        table = (out / precision / "comparison.md").read_text()
        results[precision] = {"seconds": round(seconds, 1), "nDCG@10": ndcg_column(table)}
    summary = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "cpu_has_native_bf16": cpu_has_native_bf16(),
        "runs": results,
        "float32_over_bf16": round(results["off"]["seconds"] / results["on"]["seconds"], 2),
    }
    with atomic_write(out / "summary.json") as f:
        f.write(json.dumps(summary, indent=1) + "\n")
    print(f"native bf16: {summary['cpu_has_native_bf16']}")
    print("| run | nDCG@10 float32 | nDCG@10 bfloat16 |\n|---|---:|---:|")
    for name, cell in results["off"]["nDCG@10"].items():
        print(f"| {name} | {cell} | {results['on']['nDCG@10'].get(name, '—')} |")
    print(f"| **wall time** | {results['off']['seconds']:.0f} s | {results['on']['seconds']:.0f} s |")
    print(f"float32 / bfloat16: {summary['float32_over_bf16']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
