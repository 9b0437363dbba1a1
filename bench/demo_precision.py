"""The README's main job (``auxir demo``, CPU-sized) in float32 and in bfloat16, one after the other in one
run: wall time of each, their ratio, and each run's nDCG@10 from the metrics.json the demo's recipes write.

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


def ndcg_at_10(demo_out: Path) -> dict[str, float]:
    """Run name → nDCG@10 on the test queries, from the metrics.json each of the demo's recipes writes."""
    rows = {}
    for recipe, name in (("monobert", "reranker"), ("sjtf-mqp", "reranker+MQP")):
        metrics = json.loads((demo_out / recipe / "metrics.json").read_text())
        rows["BM25"] = metrics["first_stage"]["nDCG@10"]
        rows[name] = metrics["reranked"]["nDCG@10"]
        if metrics.get("fused"):
            rows[f"{name} ⊕ BM25 (w={metrics['fusion']['weight']:.2f})"] = metrics["fused"]["nDCG@10"]
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
        results[precision] = {"seconds": round(seconds, 1), "nDCG@10": ndcg_at_10(out / precision)}
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
    for name, value in results["off"]["nDCG@10"].items():
        bf16 = results["on"]["nDCG@10"].get(name)
        print(f"| {name} | {value:.4f} | {'—' if bf16 is None else f'{bf16:.4f}'} |")
    print(f"| **wall time** | {results['off']['seconds']:.0f} s | {results['on']['seconds']:.0f} s |")
    print(f"float32 / bfloat16: {summary['float32_over_bf16']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
