"""An experiment end to end: first stage → training → rank (rerank or retrieve) → evaluation and fusion.

The model, its training batches and how it ranks come from the recipe's family (``auxir.families``).

``run_experiment(recipe)`` is what ``auxir train`` and the demo call; every step's output (first-stage
run, checkpoints, reranked run, metrics) is written under ``recipe.training.output_dir``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auxir.data.dataset import Dataset, load_dataset
from auxir.data.records import ScoredDoc
from auxir.data.trec import read_run, write_run
from auxir.evaluation.folds import load_folds
from auxir.evaluation.fusion import FusionChoice, choose_weight, fuse
from auxir.evaluation.metrics import evaluate
from auxir.families import Context, QuerySplit, get_family
from auxir.io import atomic_write
from auxir.models.hf import check_model_available
from auxir.objectives import build_objective
from auxir.provenance import collect as collect_provenance
from auxir.recipe import Recipe, apply_overrides
from auxir.training.distributed import init_distributed
from auxir.training.trainer import Trainer, TrainResult
from auxir.training.weighting import ComponentSchedule

log = logging.getLogger(__name__)

# Fields a resumed run may change from its saved recipe.json: they change where a run lives, how it is
# watched or checkpointed and how fast it evaluates, never what it learns. Everything else must keep its
# saved value. That includes training.max_steps and training.epochs: the linear learning-rate decay was
# planned for the first run's length, so a resumed run made longer would match no run trained from scratch
# (train a new run with the longer budget instead).
RESUME_SAFE_FIELDS = frozenset(
    {
        "training.output_dir",  # the run's folder may have been moved
        "training.resume",
        "training.progress",
        "training.log_every",
        "training.save_every",
        "training.device",
        "evaluation.batch_size",
        "training.report_to",  # where records are reported, not what is learned
    }
)


@dataclass
class ExperimentResult:
    recipe: str
    first_stage: dict[str, float]
    reranked: dict[str, float]
    train: TrainResult
    run_path: Path
    first_stage_path: Path
    rerank_seconds: float
    rerank_pairs: int
    fused: dict[str, float] | None = None  # reranker ⊕ first stage, weight chosen on validation
    fusion: FusionChoice | None = None
    fused_path: Path | None = None


def split_queries(ds: Dataset, recipe: Recipe) -> QuerySplit:
    cfg = recipe.data
    if cfg.folds:
        folds = load_folds(cfg.folds)
        if not 0 <= cfg.fold < len(folds):
            raise ValueError(f"{cfg.folds}: fold {cfg.fold} out of range; the file has {len(folds)} folds")
        fold = folds[cfg.fold]
        qrels = ds.qrels(cfg.eval_split)
        return QuerySplit(
            list(fold.train)[: cfg.max_train_queries],
            list(fold.valid)[: cfg.max_valid_queries],
            list(fold.test)[: cfg.max_eval_queries],
            qrels,
            qrels,
        )
    if cfg.train_split not in ds.splits or not ds.queries_for(cfg.train_split):
        raise ValueError(_no_train_split_message(ds, recipe))
    train = list(ds.queries_for(cfg.train_split))
    if cfg.valid_split:
        valid = list(ds.queries_for(cfg.valid_split))
        train_qrels = ds.qrels(cfg.train_split) + ds.qrels(cfg.valid_split)
    else:
        rng = np.random.default_rng(recipe.training.seed)
        held = set(rng.choice(train, size=int(len(train) * cfg.valid_fraction), replace=False).tolist())
        valid = [q for q in train if q in held]
        train = [q for q in train if q not in held]
        train_qrels = ds.qrels(cfg.train_split)
    test = list(ds.queries_for(cfg.eval_split))
    return QuerySplit(
        train[: cfg.max_train_queries],
        valid[: cfg.max_valid_queries],
        test[: cfg.max_eval_queries],
        train_qrels,
        ds.qrels(cfg.eval_split),
    )


def _no_train_split_message(ds: Dataset, recipe: Recipe) -> str:
    """Why ``split_queries`` cannot train on ``ds``, and the command that can (cross-validation folds)."""
    cfg = recipe.data
    found = "no such split" if cfg.train_split not in ds.splits else "no judged queries"
    split = f" --split {cfg.eval_split}" if cfg.eval_split in ds.splits else ""
    return (
        f"dataset {cfg.dataset!r}: expected a training split {cfg.train_split!r}, found {found} "
        f"(its splits: {', '.join(ds.splits) or 'none'}); to train and test on folds of its judged queries, "
        f"run `auxir cv --recipe {recipe.name} --dataset {cfg.dataset}{split}` "
        f"(or set data.train_split, or data.folds and data.fold)"
    )


def saved_recipe(output_dir: str | Path) -> Recipe:
    """The recipe a run in ``output_dir`` was started with (its ``recipe.json``)."""
    path = Path(output_dir) / "recipe.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{output_dir}: no recipe.json, so no run to resume in this folder; "
            "check the output directory, or start a new run without --resume"
        )
    return Recipe.from_dict(json.loads(path.read_text(encoding="utf-8")), where=str(path))


def resume_recipe(output_dir: str | Path, overrides: list[str]) -> Recipe:
    """The saved recipe of the run in ``output_dir`` with ``overrides`` applied (checked as resumable)."""
    saved = saved_recipe(output_dir)
    values = apply_overrides(saved.to_dict(), overrides)
    values["training"]["output_dir"] = str(output_dir)  # where the run is now, wherever it was started
    recipe = Recipe.from_dict(values, where=str(Path(output_dir) / "recipe.json"))
    check_resumable(saved, recipe)
    return recipe


_ABSENT = object()


def check_resumable(saved: Recipe, recipe: Recipe) -> None:
    """Refuse to resume with a recipe that differs from the saved one outside ``RESUME_SAFE_FIELDS``."""
    before, after = _flatten(saved.to_dict()), _flatten(recipe.to_dict())
    changed = [
        f"{key}: {before.get(key, '(absent)')!r} -> {after.get(key, '(absent)')!r}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, _ABSENT) != after.get(key, _ABSENT) and key not in RESUME_SAFE_FIELDS
    ]
    if changed:
        raise ValueError(
            f"{recipe.training.output_dir}: cannot resume with settings that differ from the run's "
            f"recipe.json ({'; '.join(changed)}); a resumed run may change only "
            f"{', '.join(sorted(RESUME_SAFE_FIELDS - {'training.resume'}))}"
        )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"training": {"seed": 0}, "objectives": [{...}]}`` → ``{"training.seed": 0, "objectives.0.name": ...}``."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def first_stage_run(ds: Dataset, recipe: Recipe, query_ids: list[str]) -> list[ScoredDoc]:
    cfg = recipe.data
    wanted = set(query_ids)
    if cfg.first_stage == "bm25":
        from auxir.retrieval.bm25 import BM25Config, BM25Index

        index = BM25Index.build(ds.docs, BM25Config(k1=cfg.bm25_k1, b=cfg.bm25_b))
        return index.search({q: ds.queries[q] for q in query_ids}, k=cfg.first_stage_k)
    if cfg.first_stage == "dense":
        from auxir.retrieval.dense import EncoderConfig
        from auxir.retrieval.dense_retriever import DenseRetriever

        device = recipe.training.device
        encoder = EncoderConfig(model=cfg.dense_model or recipe.model, device=device, batch_size=128)
        retriever = DenseRetriever.build(ds.docs, encoder, show_progress=recipe.training.progress)
        return retriever.search({q: ds.queries[q].text for q in query_ids}, k=cfg.first_stage_k)
    run = ds.run(cfg.first_stage) if cfg.first_stage in ds.runs else read_run(cfg.first_stage)
    return [s for s in run if s.query_id in wanted]


def run_experiment(recipe: Recipe) -> ExperimentResult:
    check_model_available(recipe.model)  # a mistyped model fails now, not after loading data and BM25
    family = get_family(recipe.family)
    family.check(recipe)  # before any data is read
    env = init_distributed()
    out = Path(recipe.training.output_dir)
    if recipe.training.resume:
        check_resumable(saved_recipe(out), recipe)  # before recipe.json is overwritten
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "recipe.json") as f:
        json.dump(recipe.to_dict(), f, indent=2)
    ds = load_dataset(recipe.data.dataset)
    split = split_queries(ds, recipe)
    log.info("queries: %d train, %d valid, %d test", len(split.train), len(split.valid), len(split.test))

    first_stage_path = out / "first_stage.trec"
    run = first_stage_run(ds, recipe, split.train + split.valid + split.test)
    if env.is_main:
        write_run(first_stage_path, run, tag=recipe.data.first_stage)
    ctx = Context(recipe, ds, split, run, env, out)

    model = family.build_model(ctx)
    source = family.batch_source(model, ctx)
    objectives = {o.name: build_objective(o.name, o.params) for o in recipe.objectives}
    for objective in objectives.values():
        objective.prepare(model, ctx)
    schedules = {o.name: ComponentSchedule(o.weight, o.start_step, o.stop_step) for o in recipe.objectives}
    valid_run = ctx.run_for(split.valid)
    test_run = ctx.run_for(split.test)
    ev = recipe.evaluation

    def validate(m) -> dict[str, float]:
        ranked = family.rank(m, ctx, valid_run).run
        return evaluate(ranked, split.train_qrels, [ev.valid_metric], rel=ev.rel).aggregate

    trainer = Trainer(
        model,
        objectives,
        schedules,
        source,
        recipe.training,
        weighting=recipe.weighting,
        validate=validate if valid_run else None,
        metric=ev.valid_metric,
        provenance=collect_provenance(recipe.to_dict(), recipe.data.dataset, docs=ds.docs),
    )
    train_result = trainer.train()

    if train_result.best_dir is not None:
        model = family.load_model(train_result.best_dir, ctx).to(trainer.device)
    reranked = family.rank(model, ctx, test_run)
    seconds = reranked.seconds
    run_path = out / "reranked.trec"
    first = evaluate(test_run, split.test_qrels, ev.metrics, rel=ev.rel).aggregate
    second = evaluate(reranked.run, split.test_qrels, ev.metrics, rel=ev.rel).aggregate
    fusion, fused_run, fused = None, None, None
    if ev.fusion != "none" and valid_run:
        # The weight is chosen on the validation queries with the model that is evaluated, never on test.
        valid_reranked = family.rank(model, ctx, valid_run).run
        fusion = choose_weight(
            valid_reranked, valid_run, split.train_qrels, ev.valid_metric, ev.fusion, rel=ev.rel
        )
        fused_run = fuse(reranked.run, test_run, fusion.weight, ev.fusion)
        fused = evaluate(fused_run, split.test_qrels, ev.metrics, rel=ev.rel).aggregate
        log.info(
            "fusion: weight %.2f on the reranker (validation %s %.4f)",
            fusion.weight,
            fusion.metric,
            fusion.value,
        )
    result = ExperimentResult(
        recipe=recipe.name,
        first_stage=first,
        reranked=second,
        train=train_result,
        run_path=run_path,
        first_stage_path=first_stage_path,
        rerank_seconds=seconds,
        rerank_pairs=reranked.pairs,
        fused=fused,
        fusion=fusion,
        fused_path=out / "fused.trec" if fused_run else None,
    )
    if env.is_main:
        write_run(run_path, reranked.run, tag=recipe.name)
        if fused_run:
            write_run(out / "fused.trec", fused_run, tag=f"{recipe.name}-fused")
        summary = {
            "recipe": recipe.name,
            "family": recipe.family,
            "first_stage": first,
            "reranked": second,
            "train_steps": train_result.steps,
            "train_seconds": train_result.seconds,
            "train_pairs_per_second": train_result.pairs_per_second,
            "best_valid": train_result.best_metric,
            "best_step": train_result.best_step,
            "rerank_seconds": seconds,
            "rerank_pairs": reranked.pairs,
            "fused": fused,
            "fusion": asdict(fusion) if fusion else None,
            "family_facts": family.describe(ctx),  # e.g. a retrieval family's corpus encoding and index
        }
        with atomic_write(out / "metrics.json") as f:
            json.dump(summary, f, indent=2)
        _plot(out, split.test_qrels)
    return result


def _plot(out: Path, qrels) -> None:
    """training.png, scores.png, vs-first-stage.png beside the results; a plot never fails a finished run."""
    from auxir.plots import plot_run_dir

    try:
        paths = plot_run_dir(out, qrels=qrels)
        log.info("plots: %s", ", ".join(str(p) for p in paths))
    except Exception as error:  # noqa: BLE001 — the runs and metrics above are what matter
        log.warning("plots not written: %s", error)
