"""``auxir train``: run a recipe (first stage → training → rerank → evaluation).

auxir train --recipe sjtf-mqp --dataset ../shared/data/scifact --output-dir outputs/sjtf
auxir train --recipe recipes/monobert.yaml --set training.learning_rate=2e-5 --set objectives.0.params.margin=0.5
torchrun --nproc-per-node 2 -m auxir.cli train --recipe sjtf-mqp      # DistributedDataParallel
auxir train --resume --output-dir outputs/sjtf --set training.device=cuda:1   # goes on with its recipe.json
auxir train --recipe monobert --report-to wandb      # the loss records also to Weights & Biases
"""

from __future__ import annotations

import argparse
import json
import os


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train and evaluate a reranker from a recipe")
    add_recipe_arguments(parser)
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved recipe and exit")
    parser.set_defaults(func=run)


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set`` and its shortcuts ``--dataset`` / ``--model`` (``train`` and ``tune`` share them)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any recipe field (repeatable), e.g. training.epochs=2 or objectives.1.weight=0.05",
    )
    parser.add_argument("--dataset", help="shortcut for --set data.dataset=...")
    parser.add_argument("--model", help="shortcut for --set model=...")


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    if args.model:
        overrides.append(f"model={args.model}")
    return overrides


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    from typing import get_args

    from auxir.training.config import ReportTo

    parser.add_argument("--recipe", default=None, help="a recipe name in recipes/ or a YAML file")
    add_override_arguments(parser)
    parser.add_argument("--output-dir", help="shortcut for --set training.output_dir=...")
    parser.add_argument(
        "--report-to",
        choices=get_args(ReportTo),
        help="shortcut for --set training.report_to=...: where the loss records go besides train_log.jsonl "
        "(auto: TensorBoard when installed)",
    )
    parser.add_argument(
        "--seed", type=int, help="shortcut for --set training.seed=... --set samples.seed=..."
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in output_dir from its checkpoint-last with its saved recipe.json; "
        "only training.progress, report_to, log_every, save_every, device and evaluation.batch_size may change",
    )


def recipe_from_args(args: argparse.Namespace):
    from auxir.recipe import load_recipe

    overrides = overrides_from_args(args)
    if args.output_dir:
        overrides.append(f"training.output_dir={args.output_dir}")
    if getattr(args, "report_to", None):
        overrides.append(f"training.report_to={args.report_to}")
    if args.seed is not None:
        overrides += [f"training.seed={args.seed}", f"samples.seed={args.seed}"]
    if getattr(args, "resume", False):
        overrides.append("training.resume=true")
        from auxir.experiment import check_resumable, resume_recipe, saved_recipe

        if args.recipe is None:
            # The run's own recipe.json, not the defaults: a resumed run must go on with its settings.
            return resume_recipe(_output_dir(overrides), overrides)
        recipe = load_recipe(args.recipe, overrides)
        check_resumable(saved_recipe(recipe.training.output_dir), recipe)
        return recipe
    return load_recipe(args.recipe, overrides)


def _output_dir(overrides: list[str]) -> str:
    """The output_dir the overrides set (the last one wins, as in ``apply_overrides``), else the default."""
    import yaml

    from auxir.training.config import TrainingConfig

    for item in reversed(overrides):
        key, _, raw = item.partition("=")
        if key == "training.output_dir":
            return str(yaml.safe_load(raw))
    return TrainingConfig().output_dir


def run(args: argparse.Namespace) -> int:
    recipe = recipe_from_args(args)
    if args.print_recipe:
        print(json.dumps(recipe.to_dict(), indent=2))
        return 0
    from auxir.experiment import run_experiment
    from auxir.training.reporting import resolve_report_to

    resolve_report_to(recipe.training.report_to)  # a missing reporter package fails before any data is read
    result = run_experiment(recipe)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, one report is enough
        return 0
    metrics = list(result.reranked)
    print(f"| run | {' | '.join(metrics)} |")
    print(f"|---|{'---|' * len(metrics)}")
    print(
        f"| first stage ({recipe.data.first_stage}) | {' | '.join(f'{result.first_stage[m]:.4f}' for m in metrics)} |"
    )
    print(f"| {recipe.name} | {' | '.join(f'{result.reranked[m]:.4f}' for m in metrics)} |")
    if result.fused is not None:
        row = " | ".join(f"{result.fused[m]:.4f}" for m in metrics)
        print(f"| {recipe.name} ⊕ first stage (weight {result.fusion.weight:.2f}) | {row} |")
    print(f"reranked run: {result.run_path}; {result.train.pairs_per_second:.1f} training pairs/s")
    return 0
