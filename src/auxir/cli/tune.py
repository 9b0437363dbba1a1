"""``auxir tune``: an Optuna search over recipe fields, each trial an ``auxir train`` subprocess.

auxir tune --recipe monobert --space bench/spaces/reranker.yaml --trials 20 --jobs 4 --out outputs/tune/scifact
auxir tune --recipe sjtf-mqp --space my-space.yaml --trials 8 --sampler grid --out outputs/tune/grid --set training.seed=1

Trials are chosen on the validation queries (metrics.json ``best_valid``); re-running with the same ``--out``
resumes the search. Results: ``<out>/trials.jsonl`` (one line a trial) and ``<out>/best.yaml`` (the best
trial's resolved recipe, for ``auxir train --recipe <out>/best.yaml``).
"""

from __future__ import annotations

import argparse
import math


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from auxir.cli.train import add_override_arguments
    from auxir.tuning import SAMPLERS

    parser = subparsers.add_parser("tune", help="search recipe hyper-parameters with Optuna")
    parser.add_argument("--recipe", required=True, help="a recipe name in recipes/ or a YAML file")
    parser.add_argument("--space", required=True, help="a search space YAML file (see bench/spaces/)")
    parser.add_argument("--trials", type=int, required=True, help="trials in all (a resumed search included)")
    parser.add_argument("--jobs", type=int, default=1, help="trials run at once (they share the device)")
    parser.add_argument("--out", required=True, help="output directory; re-run with the same one to resume")
    add_override_arguments(parser)  # every trial gets these
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="grid: categorical params only")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (not the training seed)")
    parser.add_argument(
        "--keep-models", action="store_true", help="keep each trial's model/, best/ and checkpoint-last/"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from auxir.cli.train import overrides_from_args
    from auxir.tuning import tune

    overrides = overrides_from_args(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search logs each trial itself
    result = tune(
        args.recipe,
        args.space,
        args.out,
        trials=args.trials,
        jobs=args.jobs,
        overrides=overrides,
        sampler=args.sampler,
        seed=args.seed,
        keep_models=args.keep_models,
    )
    sign = 1.0 if result.direction == "maximize" else -1.0

    def order(record) -> tuple:
        return (record.value is None, -sign * record.value if record.value is not None else 0.0, record.trial)

    names = sorted({name for record in result.trials for name in record.params})
    metric = next((r.valid_metric for r in result.trials if r.valid_metric), "value")
    print(f"| trial | valid {metric} | {' | '.join(names)} | seconds | state |")
    print(f"|---|---|{'---|' * len(names)}---|---|")
    for record in sorted(result.trials, key=order):
        value = f"{record.value:.4f}" if record.value is not None else "-"
        params = " | ".join(_show(record.params.get(name)) for name in names)
        seconds = f"{record.seconds:.0f}" if record.seconds is not None else "-"
        print(f"| {record.trial} | {value} | {params} | {seconds} | {record.state} |")
    print(
        f"{result.n_complete} complete, {result.n_failed} failed; every trial: {result.out_dir / 'trials.jsonl'}"
    )
    if result.best_params is None:
        print("no trial completed: see the errors in trials.jsonl and each trial's stderr.log")
        return 1
    print(f"best trial {result.best_trial}: valid {metric} = {result.best_value:.4f} ({result.best_dir})")
    print("best params: " + " ".join(f"--set {k}={_show(v)}" for k, v in result.best_params.items()))
    print(f"best recipe: {result.best_recipe} (auxir train --recipe {result.best_recipe} --output-dir ...)")
    return 0


def _show(value) -> str:
    if isinstance(value, float) and value != 0 and math.isfinite(value) and abs(value) < 1e-3:
        return f"{value:.3g}"
    return "-" if value is None else str(value)
