"""``auxir demo``: the README's main job. BM25 → a MiniLM-L6 reranker with and without masked query
prediction (the tuned recipes) → a table of the runs, alone and fused with BM25 (weight chosen on
validation queries), with significance tests against BM25.

On a machine without a GPU it is sized for 2 cores (a slice of the training queries, short inputs,
top-20 reranking of 100 test queries) and runs in bfloat16 where the CPU has native bf16 instructions
(docs/results/demo.md: 1.8x faster than float32, the same table to within 0.001); with a GPU it runs the
full-size recipes (``src/auxir/recipes/monobert.yaml`` and ``sjtf-mqp.yaml``), which is also what
``auxir train --recipe sjtf-mqp`` runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# Sizing for a 2-core CPU (MiniLM-L6 forward ≈ 19 documents of 256 tokens a second there).
CPU_OVERRIDES = [
    "architecture.max_length=128",
    "architecture.max_query_length=24",
    "samples.num_negatives=3",
    "training.batch_size=8",
    "training.max_steps=80",
    "data.max_valid_queries=30",  # enough to choose the fusion weight
    "data.max_train_queries=480",
    "data.max_eval_queries=100",
    "data.rerank_top_k=20",
    "evaluation.batch_size=32",
    "evaluation.metrics=[nDCG@10, RR@10, nDCG@20]",  # P@20 cannot move when only the top 20 are reranked
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="BM25 vs reranker vs reranker+MQP, with significance")
    parser.add_argument("--data", default="../shared/data/scifact", help="BEIR directory or irds:<id>")
    parser.add_argument("--out", default="outputs/demo", help="output directory")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--full", action="store_true", help="full-size recipes even without a GPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--bf16",
        choices=("auto", "on", "off"),
        default="auto",
        help="bfloat16 autocast for training and reranking; auto: on a GPU, and on a CPU with native bf16 "
        "instructions (AVX512-BF16 or AMX), where it is about 1.8x faster than float32",
    )
    parser.set_defaults(func=run)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), as torch's CPU kernels see it.
    Elsewhere bf16 autocast is emulated and slower than float32, so the demo stays in float32 there."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private but long-lived
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def run(args: argparse.Namespace) -> int:
    import torch

    from auxir.data.dataset import load_dataset
    from auxir.data.trec import read_run
    from auxir.evaluation.compare import compare
    from auxir.evaluation.folds import make_folds, save_folds
    from auxir.experiment import run_experiment
    from auxir.recipe import load_recipe

    full = args.full or torch.cuda.is_available()
    bf16 = {"on": "true", "off": "false"}.get(args.bf16, "true" if cpu_has_native_bf16() else "auto")
    out = Path(args.out)
    started = time.perf_counter()
    ds = load_dataset(args.data)
    eval_split = next((s for s in ("test", "dev") if s in ds.splits), ds.splits[-1] if ds.splits else None)
    if eval_split is None:
        raise ValueError(f"{args.data}: no qrels split to train and evaluate on")
    split_overrides = [f"data.eval_split={eval_split}"]
    if "train" not in ds.splits:
        # No training split (Cranfield, Vaswani, ...): train on folds of the judged queries, test on fold 0.
        folds = make_folds(sorted(ds.queries_for(eval_split)), k=5, seed=args.seed)
        save_folds(out / "folds.json", folds, {"dataset": args.data, "split": eval_split})
        split_overrides += [f"data.folds={out / 'folds.json'}", "data.fold=0"]
        print(f"{args.data} has no train split: 5-fold cross-validation over '{eval_split}', fold 0 shown")
    common = split_overrides + [
        f"data.dataset={args.data}",
        f"model={args.model}",
        f"training.seed={args.seed}",
        f"samples.seed={args.seed}",
        f"training.bf16={bf16}",
    ]
    results = {}
    for recipe_name in ("monobert", "sjtf-mqp"):
        overrides = common + [f"training.output_dir={out / recipe_name}"] + ([] if full else CPU_OVERRIDES)
        recipe = load_recipe(recipe_name, overrides)
        print(f"[{time.perf_counter() - started:5.0f}s] training {recipe_name} ...", flush=True)
        results[recipe_name] = run_experiment(recipe)
    first = results["monobert"]
    test_queries = {s.query_id for s in read_run(first.run_path)}
    bm25 = [s for s in read_run(first.first_stage_path) if s.query_id in test_queries]
    qrels = ds.qrels(recipe.data.eval_split)
    runs = {
        "BM25": bm25,
        "reranker": read_run(first.run_path),
        "reranker+MQP": read_run(results["sjtf-mqp"].run_path),
    }
    for name, key in (("reranker ⊕ BM25", "monobert"), ("reranker+MQP ⊕ BM25", "sjtf-mqp")):
        if results[key].fused_path is not None:  # fusion weight chosen on the validation queries
            runs[f"{name} (w={results[key].fusion.weight:.2f})"] = read_run(results[key].fused_path)
    comparison = compare(runs, "BM25", qrels, recipe.evaluation.metrics)
    table = comparison.to_markdown()
    (out / "comparison.md").write_text(table + "\n")
    print(table)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = "bfloat16" if recipe.training.uses_bf16(device) else "float32"
    print(
        f"\n{len(test_queries)} test queries, BM25 top-{recipe.data.rerank_top_k} reranked; "
        f"{'full-size' if full else 'CPU-sized'} run in {time.perf_counter() - started:.0f} s ({precision}). "
        f"Full-size result: `auxir train --recipe sjtf-mqp` (and `--recipe monobert`), best on a GPU."
    )
    return 0
