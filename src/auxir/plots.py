"""Plots of a run folder, written as PNG beside its results: training curves, score distributions, and
per-query differences against another run.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, never through pyplot, so plotting
changes no global state (no backend switch, no list of open figures) and needs no display. Every file is
written atomically.

    plot_run_dir("outputs/sjtf")   # -> [outputs/sjtf/training.png, scores.png, vs-first-stage.png]
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from auxir.data.errors import DataFormatError, describe_json_error
from auxir.data.records import Qrel, ScoredDoc
from auxir.data.trec import group_by_query, iter_lines, read_run
from auxir.evaluation.compare import TIE_TOLERANCE
from auxir.evaluation.metrics import evaluate
from auxir.io import atomic_write

__all__ = [
    "TrainLog",
    "plot_per_query_differences",
    "plot_run_dir",
    "plot_score_distributions",
    "plot_training",
    "read_train_log",
    "run_dir_qrels",
]

logger = logging.getLogger(__name__)

ScoreScale = Literal["raw", "minmax"]

# Keys of a training record that are not loss components (auxir.training.trainer.Trainer._log).
_BOOKKEEPING = {"step", "epoch", "lr", "loss"}
# What the weighting strategies log per component (log_values() in auxir.training.weighting), each turned
# into the multiplier of that component's loss: (prefix, legend suffix, value -> multiplier).
_LEARNED_WEIGHTS = (
    ("weight/", "", lambda v: v),
    ("coef/", " (gradient-ratio coefficient)", lambda v: v),
    ("sigma2/", " (uncertainty: 1/(2σ²))", lambda v: 1.0 / (2.0 * v) if v > 0 else math.nan),
)
# A y axis spanning more than this ratio of typical values is drawn on a log scale.
_LOG_SCALE_RATIO = 20.0
_GROUP_COLORS = {"relevant": "tab:green", "judged non-relevant": "tab:red", "unjudged": "tab:gray"}
_DPI = 120


@dataclass(frozen=True)
class TrainLog:
    """``train_log.jsonl`` read back: training and validation records, each sorted by step, one per step.

    A step logged twice (a resumed run logs the steps after its checkpoint again) keeps its last record.
    Only numeric values are kept.
    """

    path: Path
    training: list[dict[str, float]]
    validation: list[dict[str, float]]

    @property
    def components(self) -> list[str]:
        """The loss components' names (the objectives), in order of first appearance."""
        keys = dict.fromkeys(k for record in self.training for k in record)
        return [k for k in keys if k not in _BOOKKEEPING and "/" not in k]

    @property
    def valid_metrics(self) -> list[str]:
        keys = dict.fromkeys(k for record in self.validation for k in record)
        return [k.removeprefix("valid/") for k in keys if k.startswith("valid/")]

    @staticmethod
    def series(records: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
        """``(steps, values)`` of ``key`` over the records that hold it."""
        found = [(record["step"], record[key]) for record in records if key in record]
        return [s for s, _ in found], [v for _, v in found]


def read_train_log(path: str | Path) -> TrainLog:
    """Read ``train_log.jsonl``; a malformed line is a :class:`DataFormatError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such training log (auxir train writes train_log.jsonl)")
    training: dict[int, dict[str, float]] = {}
    validation: dict[int, dict[str, float]] = {}
    for line_no, text in iter_lines(path):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                path, line_no, "one JSON object per line", describe_json_error(error)
            ) from None
        if not isinstance(record, dict):
            raise DataFormatError(path, line_no, "a JSON object", type(record).__name__)
        step = record.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            raise DataFormatError(path, line_no, "an integer 'step'", repr(step))
        values = {
            k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        is_validation = any(k.startswith("valid/") for k in values)
        (validation if is_validation else training)[step] = values
    if not training and not validation:
        raise DataFormatError(path, None, "at least one training or validation record", "an empty log")
    return TrainLog(
        path=path,
        training=[training[s] for s in sorted(training)],
        validation=[validation[s] for s in sorted(validation)],
    )


def plot_training(
    log_path: str | Path,
    out_png: str | Path,
    *,
    objectives: Sequence[Mapping[str, Any]] | None = None,
    valid_metric: str | None = None,
    title: str | None = None,
) -> Path:
    """Loss components, their weights and the validation curve over training steps, one panel each.

    The loss panel draws every component unweighted (one line each) and the weighted total; its y axis is
    logarithmic when the components differ by more than a factor of 20. The weight panel draws the weights
    that the weighting strategy logged (uncertainty: ``1/(2σ²)``; gradient ratio: the coefficient) or, when
    it logged none, the fixed weights of ``objectives`` (the recipe's entries: ``name``, ``weight``,
    ``start_step``, ``stop_step``) if there is more than one or one has an active window. The validation
    panel marks the best step of ``valid_metric`` (default: the first validation metric). Panels without
    data are left out. Returns ``out_png``.
    """
    log = read_train_log(log_path)
    panels = [
        panel
        for panel in (
            _loss_panel(log),
            _weight_panel(log, objectives),
            _validation_panel(log, valid_metric),
        )
        if panel is not None
    ]
    if not panels:
        raise ValueError(f"{log.path}: expected loss or validation values to plot, found none")
    figure = Figure(figsize=(9, 1.0 + 3.0 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    best = None
    for ax, draw in zip(axes, panels):
        best = draw(ax) or best
    if best is not None:
        for ax in axes:
            ax.axvline(best, color="0.5", linestyle=":", linewidth=1)
    axes[-1].set_xlabel("training step")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title or f"Training of {log.path.parent.name}", fontweight="bold")
    return _save(figure, out_png)


def _loss_panel(log: TrainLog):
    components = log.components
    if not components and not any("loss" in record for record in log.training):
        return None

    def draw(ax: Axes) -> None:
        lines = []
        for i, name in enumerate(components):
            steps, values = log.series(log.training, name)
            ax.plot(steps, values, color=_color(i), linewidth=1.6, label=name, marker=_marker(steps))
            lines.append(values)
        steps, values = log.series(log.training, "loss")
        if steps:
            ax.plot(
                steps,
                values,
                color="black",
                linestyle="--",
                linewidth=1.2,
                label="weighted total",
                marker=_marker(steps),
            )
            lines.append(values)
        _maybe_log_scale(ax, lines)
        ax.set_title("Loss components (unweighted) and the weighted total", loc="left")
        ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)

    return draw


def _weight_panel(log: TrainLog, objectives: Sequence[Mapping[str, Any]] | None):
    components = log.components
    learned = []  # (label, color, steps, multipliers)
    for prefix, suffix, to_weight in _LEARNED_WEIGHTS:
        for key in dict.fromkeys(k for record in log.training for k in record if k.startswith(prefix)):
            name = key.removeprefix(prefix)
            steps, values = log.series(log.training, key)
            color = _color(components.index(name)) if name in components else None
            learned.append((name + suffix, color, steps, [to_weight(v) for v in values]))
    if not learned and objectives and _schedule_matters(objectives):
        last = max(record["step"] for record in [*log.training, *log.validation])
        steps = list(range(int(last) + 1))
        for entry in objectives:
            name = str(entry.get("name"))
            weight = float(entry.get("weight", 1.0))
            start, stop = entry.get("start_step") or 0, entry.get("stop_step")
            values = [weight if start <= s and (stop is None or s < stop) else 0.0 for s in steps]
            color = _color(components.index(name)) if name in components else None
            learned.append((f"{name} (fixed)", color, steps, values))
    if not learned:
        return None

    def draw(ax: Axes) -> None:
        for label, color, steps, values in learned:
            ax.plot(
                steps,
                values,
                color=color,
                linewidth=1.6,
                label=label,
                drawstyle="steps-post",
                marker=_marker(steps),
            )
        _maybe_log_scale(ax, [values for *_, values in learned])
        ax.set_title("Weight of each component's loss", loc="left")
        ax.set_ylabel("weight" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)

    return draw


def _schedule_matters(objectives: Sequence[Mapping[str, Any]]) -> bool:
    """A single objective always weighted the same has nothing to show."""
    return len(objectives) > 1 or any(
        (entry.get("start_step") or 0) > 0 or entry.get("stop_step") is not None for entry in objectives
    )


def _validation_panel(log: TrainLog, valid_metric: str | None):
    metrics = log.valid_metrics
    if not metrics:
        return None
    chosen = valid_metric if valid_metric in metrics else metrics[0]

    def draw(ax: Axes) -> float:
        for i, metric in enumerate(metrics):
            steps, values = log.series(log.validation, f"valid/{metric}")
            ax.plot(steps, values, color=_color(i), marker="o", markersize=3, linewidth=1.6, label=metric)
        steps, values = log.series(log.validation, f"valid/{chosen}")
        # The first of equal values, as the trainer keeps a new best only when it is strictly higher.
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        ax.plot(
            steps[best],
            values[best],
            marker="*",
            markersize=15,
            color="gold",
            markeredgecolor="black",
            linestyle="none",
            label=f"best {chosen}: {values[best]:.4f} at step {steps[best]:g}",
            zorder=3,
        )
        ax.set_title("Validation", loc="left")
        ax.set_ylabel("metric on validation queries")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
        return steps[best]

    return draw


def plot_score_distributions(
    run: Sequence[ScoredDoc],
    qrels: Sequence[Qrel],
    out_png: str | Path,
    rel: int = 1,
    *,
    first_stage: Sequence[ScoredDoc] | None = None,
    top_k: int | None = None,
    scales: Sequence[ScoreScale] = ("raw", "minmax"),
    names: tuple[str, str] = ("reranked", "first stage"),
    bins: int = 40,
) -> Path:
    """Step histograms (densities) of the scores of relevant, judged non-relevant and unjudged documents.

    One row per run (``run``, then ``first_stage`` if given; ``names`` titles them), one column per scale:
    ``"raw"`` scores, and ``"minmax"`` scores normalised per query to [0, 1] so that queries compare (a
    query whose scores are all equal puts them at 0.5). A document is relevant when its grade is at least
    ``rel``. Only judged queries count, and of each only its ``top_k`` highest scores when given (the
    documents a reranker scored; ``auxir rerank`` appends the rest below them). Dashed lines are medians.
    Returns ``out_png``.
    """
    if not scales:
        raise ValueError(
            "plot_score_distributions: expected at least one scale ('raw', 'minmax'), found none"
        )
    for scale in scales:
        if scale not in ("raw", "minmax"):
            raise ValueError(f"plot_score_distributions: expected scales 'raw' or 'minmax', found {scale!r}")
    grades: dict[str, dict[str, int]] = {}
    for qrel in qrels:
        grades.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    rows = [(names[0], run)] + ([(names[1], first_stage)] if first_stage is not None else [])
    figure = Figure(figsize=(5.2 * len(scales), 1.2 + 3.4 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(scales), squeeze=False)
    n_queries = 0
    for row, (name, scored) in enumerate(rows):
        per_query = {q: docs[:top_k] for q, docs in group_by_query(scored).items() if q in grades}
        if not per_query:
            raise ValueError(
                f"plot_score_distributions: expected the {name} run to share queries with the qrels, found none"
            )
        n_queries = max(n_queries, len(per_query))
        for col, scale in enumerate(scales):
            groups = _score_groups(per_query, grades, rel, normalise=scale == "minmax")
            _draw_histograms(axes[row, col], groups, bins)
            scale_name = "raw scores" if scale == "raw" else "scores min-max normalised per query"
            axes[row, col].set_title(f"{name}: {scale_name}", loc="left")
            axes[row, col].set_xlabel(
                "score" if scale == "raw" else "normalised score (0 = lowest, 1 = highest)"
            )
    top = f", top {top_k} per query" if top_k else ""
    figure.suptitle(
        f"Score distributions over {n_queries} judged queries (relevant: grade ≥ {rel}{top})",
        fontweight="bold",
    )
    return _save(figure, out_png)


def _score_groups(
    per_query: Mapping[str, list[ScoredDoc]],
    grades: Mapping[str, Mapping[str, int]],
    rel: int,
    normalise: bool,
) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = {name: [] for name in _GROUP_COLORS}
    for query_id, docs in per_query.items():
        scores = [doc.score for doc in docs]
        if normalise:
            low, high = min(scores), max(scores)
            scores = [(s - low) / (high - low) if high > low else 0.5 for s in scores]
        judged = grades[query_id]
        for doc, score in zip(docs, scores):
            grade = judged.get(doc.doc_id)
            group = "unjudged" if grade is None else "relevant" if grade >= rel else "judged non-relevant"
            groups[group].append(score)
    return groups


def _draw_histograms(ax: Axes, groups: Mapping[str, list[float]], bins: int) -> None:
    every = np.concatenate([np.asarray(v, dtype=float) for v in groups.values()])
    every = every[np.isfinite(every)]
    edges = np.histogram_bin_edges(every, bins=bins)
    tallest = 0.0
    for name, values in groups.items():
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            continue
        color = _GROUP_COLORS[name]
        heights, _, _ = ax.hist(finite, bins=edges, density=True, histtype="step", linewidth=1.8, color=color)
        tallest = max(tallest, float(np.max(heights)))
        ax.axvline(float(np.median(finite)), color=color, linestyle="--", linewidth=1.1)
        # Legend entries as lines: histtype="step" would show them as empty boxes.
        ax.plot([], [], color=color, linewidth=1.8, label=f"{name} (n={finite.size})")
    ax.plot([], [], color="0.3", linestyle="--", linewidth=1.1, label="median")
    ax.set_ylabel("density")
    # Headroom above the tallest bar keeps the legend off the bars, which fill the width of the axes.
    ax.set_ylim(0, tallest * 1.4 or 1.0)
    ax.legend(loc="upper center", ncols=2, fontsize="small")
    ax.grid(alpha=0.3)


def plot_per_query_differences(
    per_query_a: Mapping[str, float],
    per_query_b: Mapping[str, float],
    metric: str,
    out_png: str | Path,
    names: tuple[str, str] = ("run", "baseline"),
) -> Path:
    """Bars of ``a - b`` per query over the queries both have, sorted: wins green, losses red.

    ``per_query_a`` and ``per_query_b`` map query id to the value of ``metric`` (e.g.
    ``evaluate(run, qrels, [metric]).per_query[metric]``). The title counts wins, ties and losses (a tie is
    ``|a - b| < 1e-9``, as in :func:`auxir.evaluation.compare.compare`) and gives the mean difference; the y
    axis is symmetric about 0 so that gains and losses read at the same scale. Returns ``out_png``.
    """
    common = sorted(per_query_a.keys() & per_query_b.keys())
    if not common:
        raise ValueError(
            f"plot_per_query_differences: expected {names[0]!r} and {names[1]!r} to share evaluated queries, "
            f"found {len(per_query_a)} and {len(per_query_b)} queries with none in common"
        )
    diffs = sorted(((per_query_a[q] - per_query_b[q], q) for q in common), reverse=True)
    values = [d for d, _ in diffs]
    wins = sum(d >= TIE_TOLERANCE for d in values)
    losses = sum(d <= -TIE_TOLERANCE for d in values)
    ties = len(values) - wins - losses
    mean = sum(values) / len(values)
    colors = [
        "tab:green" if d >= TIE_TOLERANCE else "tab:red" if d <= -TIE_TOLERANCE else "0.6" for d in values
    ]

    figure = Figure(figsize=(10, 4.8), layout="constrained")
    ax = figure.add_subplot()
    positions = np.arange(len(values))
    ax.bar(positions, values, width=0.9 if len(values) <= 60 else 1.0, color=colors, linewidth=0)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(mean, color="black", linestyle="--", linewidth=1.1)
    limit = max(abs(d) for d in values) * 1.1 or 1.0
    ax.set_ylim(-limit, limit)
    ax.set_xlim(-0.6, len(values) - 0.4)
    if len(values) <= 40:
        ax.set_xticks(positions, [q for _, q in diffs], rotation=90, fontsize="small")
    else:
        ax.set_xticks([])
    a, b = names
    ax.set_xlabel(f"queries ({len(values)}), sorted by difference")
    ax.set_ylabel(f"Δ {metric}  ({a} − {b})")
    ax.set_title(
        f"{metric}: {a} against {b}, per query\n"
        f"{wins} wins, {ties} ties, {losses} losses; mean Δ {mean:+.4f}",
        fontweight="bold",
    )
    ax.legend(
        handles=[
            Patch(color="tab:green", label=f"{a} better ({wins})"),
            Patch(color="tab:red", label=f"{b} better ({losses})"),
            Line2D([], [], color="black", linestyle="--", label=f"mean Δ {mean:+.4f}"),
        ],
        loc="upper right",
        fontsize="small",
    )
    ax.grid(axis="y", alpha=0.3)
    return _save(figure, out_png)


def plot_run_dir(
    run_dir: str | Path,
    qrels: Sequence[Qrel] | None = None,
    *,
    out_dir: str | Path | None = None,
    metric: str = "nDCG@10",
    baseline: Sequence[ScoredDoc] | None = None,
    baseline_name: str = "baseline",
) -> list[Path]:
    """Write the plots of a folder written by ``auxir train`` and return their paths.

    Always ``training.png`` (from ``train_log.jsonl``); with judgements also ``scores.png`` (score
    distributions of ``reranked.trec`` and ``first_stage.trec``), ``vs-first-stage.png`` (per-query
    ``metric`` of the reranked run minus the first stage's) and, when ``baseline`` is given,
    ``vs-<baseline_name>.png`` (the reranked run minus the baseline). ``qrels`` default to those of the
    recipe's dataset and ``data.eval_split``; when they cannot be loaded the plots that need them are
    skipped with a log line (but not the baseline plot that was asked for: that raises). Files go to
    ``out_dir`` (default: ``run_dir``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    log_path = run_dir / "train_log.jsonl"
    if not log_path.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no train_log.jsonl here (is it a folder written by auxir train?)"
        )
    out = Path(out_dir) if out_dir is not None else run_dir
    recipe = _read_recipe(run_dir)
    data, evaluation = recipe.get("data", {}), recipe.get("evaluation", {})
    fixed = recipe.get("weighting", {}).get("strategy", "fixed") == "fixed"
    written = [
        plot_training(
            log_path,
            out / "training.png",
            objectives=recipe.get("objectives") if fixed else None,
            valid_metric=evaluation.get("valid_metric"),
            title=f"Training of {run_dir.resolve().name}",
        )
    ]

    reranked_path = run_dir / "reranked.trec"
    why_not = None
    if not reranked_path.is_file():
        why_not = f"no {reranked_path.name} (training did not finish?)"
    elif qrels is None:
        try:
            qrels = run_dir_qrels(run_dir)
        except (OSError, ValueError, KeyError) as error:
            why_not = f"no judgements ({error})"
    if why_not is not None:
        if baseline is not None:
            raise ValueError(f"{run_dir}: cannot compare with {baseline_name!r}: {why_not}")
        logger.info("%s: score and per-query plots skipped: %s", run_dir, why_not)
        return written

    rel = evaluation.get("rel")
    reranked = read_run(reranked_path)
    first_stage_path = run_dir / "first_stage.trec"
    first_stage = read_run(first_stage_path) if first_stage_path.is_file() else None
    top_k = data.get("rerank_top_k")
    written.append(
        plot_score_distributions(
            reranked,
            qrels,
            out / "scores.png",
            rel=rel or 1,
            first_stage=first_stage,
            top_k=top_k if isinstance(top_k, int) else None,
        )
    )
    ours = evaluate(reranked, qrels, [metric], rel=rel).per_query[metric]
    others = [("first stage", "first-stage", first_stage)] if first_stage is not None else []
    if baseline is not None:
        others.append((baseline_name, _file_name(baseline_name), baseline))
    for name, file_name, other in others:
        theirs = evaluate(other, qrels, [metric], rel=rel).per_query[metric]
        written.append(
            plot_per_query_differences(ours, theirs, metric, out / f"vs-{file_name}.png", ("reranked", name))
        )
    return written


def _read_recipe(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "recipe.json"
    if not path.is_file():
        return {}
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(path, error.lineno, "a JSON recipe", describe_json_error(error)) from None
    if not isinstance(recipe, dict):
        raise DataFormatError(path, None, "a JSON object", type(recipe).__name__)
    return recipe


def run_dir_qrels(run_dir: str | Path, dataset: str | None = None) -> list[Qrel]:
    """The judgements a run folder was tested on: ``data.eval_split`` of its recipe's dataset, or of
    ``dataset`` (a BEIR directory or ``irds:<id>``) when the recipe's path does not hold on this machine."""
    run_dir = Path(run_dir)
    data = _read_recipe(run_dir).get("data", {})
    dataset = dataset or data.get("dataset")
    if not dataset:
        raise FileNotFoundError(f"{run_dir}: no recipe.json naming the dataset (give the qrels instead)")
    from auxir.data.dataset import load_dataset

    return load_dataset(dataset).qrels(data.get("eval_split", "test"))


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "baseline"


def _marker(steps: Sequence[float]) -> str | None:
    """Dots on short series, so that a log of one or two records still shows its values."""
    return "." if len(steps) <= 30 else None


def _color(index: int) -> str:
    return f"C{index % 10}"


def _maybe_log_scale(ax: Axes, lines: Sequence[Sequence[float]]) -> None:
    """Log y when every value is positive and the lines' typical values differ by more than the ratio."""
    medians = []
    for values in lines:
        finite = [v for v in values if math.isfinite(v)]
        if not finite or min(finite) <= 0:
            return
        medians.append(float(np.median(finite)))
    if medians and max(medians) / min(medians) > _LOG_SCALE_RATIO:
        ax.set_yscale("log")


def _save(figure: Figure, out_png: str | Path) -> Path:
    out_png = Path(out_png)
    FigureCanvasAgg(figure)
    with atomic_write(out_png, "wb") as handle:
        figure.savefig(handle, format="png", dpi=_DPI)
    return out_png
