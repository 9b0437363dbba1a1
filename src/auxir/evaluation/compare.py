"""Compare runs against a baseline: means, paired t-tests, Holm–Bonferroni correction, win/tie/loss.

The protocol is the usual one for IR significance testing (Sakai, *Statistical Significance, Power, and
Sample Sizes*, SIGIR 2014 tutorial; Fuhr, *Some Common Mistakes in IR Evaluation*, 2017):

- per metric, a paired two-sided Student t-test (``scipy.stats.ttest_rel``) of each run against the baseline
  over the queries both were evaluated on;
- the family of tests is every (run, metric) pair, corrected together with Holm's step-down procedure
  (Holm, *A Simple Sequentially Rejective Multiple Test Procedure*, Scand. J. Statist. 6, 1979);
- per query, a win / tie / loss against the baseline, a tie being ``|difference| < 1e-9``.

Each run's mean is over its own evaluated queries, so means side by side are comparable only when the runs
cover the same queries: :func:`compare` warns when they do not (or refuses, with ``strict=True``), and warns
when a run barely overlaps the qrels (see :class:`~auxir.evaluation.metrics.Coverage`). The warnings are
logged and kept in :attr:`Comparison.notes`, which the markdown table prints.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from auxir.data.records import Qrel, ScoredDoc
from auxir.evaluation.metrics import EvalResult, MissingQueries, evaluate
from auxir.io import atomic_write

__all__ = ["TIE_TOLERANCE", "Comparison", "PairedTest", "compare", "holm_bonferroni", "paired_t_test"]

TIE_TOLERANCE = 1e-9

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairedTest:
    """One run against the baseline on one metric, over the ``n`` queries both were evaluated on.

    ``mean_diff`` is run minus baseline; ``t`` is positive when the run is better. ``p`` is the two-sided
    p-value, ``p_holm`` the Holm-corrected one, and ``significant`` is ``p_holm <= alpha``. With fewer than two
    common queries no test is possible: ``t``, ``p`` and ``p_holm`` are NaN and ``significant`` is False.
    """

    run: str
    metric: str
    n: int
    run_mean: float
    baseline_mean: float
    mean_diff: float
    t: float
    p: float
    p_holm: float
    significant: bool
    wins: int
    ties: int
    losses: int


@dataclass(frozen=True)
class TTest:
    t: float
    p: float


def paired_t_test(values: Sequence[float], baseline: Sequence[float]) -> TTest:
    """Two-sided paired t-test of ``values`` against ``baseline`` (``scipy.stats.ttest_rel``).

    Degenerate cases are decided here rather than left to scipy's NaN and warnings: fewer than two pairs gives
    NaN (no test); differences that are all equal (within :data:`TIE_TOLERANCE`) give ``t=0, p=1`` when they
    are zero and ``t=±inf, p=0`` otherwise.
    """
    if len(values) != len(baseline):
        raise ValueError(
            f"paired_t_test: expected paired samples, found {len(values)} and {len(baseline)} values"
        )
    if len(values) < 2:
        return TTest(math.nan, math.nan)
    diffs = [a - b for a, b in zip(values, baseline, strict=True)]
    if max(diffs) - min(diffs) < TIE_TOLERANCE:
        # Zero variance: no difference at all (t=0, p=1), or the same difference on every query (t=±inf,
        # p=0, the limit scipy reaches with a precision warning).
        mean = sum(diffs) / len(diffs)
        return TTest(0.0, 1.0) if abs(mean) < TIE_TOLERANCE else TTest(math.copysign(math.inf, mean), 0.0)
    result = stats.ttest_rel(values, baseline)
    return TTest(float(result.statistic), float(result.pvalue))


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    With the m finite p-values sorted ascending, ``p_adj(i) = max_{j <= i} min(1, (m - j + 1) * p(j))``;
    rejecting where ``p_adj <= alpha`` is Holm's procedure at level alpha. NaN entries (tests that could not
    be run) stay NaN and do not count towards m.

    >>> holm_bonferroni([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """Every run against ``baseline`` on every metric.

    ``runs`` lists the run names, baseline first; ``results`` holds each run's :class:`EvalResult` (its
    ``aggregate`` is the run's mean over its own evaluated queries); ``tests`` holds one :class:`PairedTest`
    per (non-baseline run, metric), Holm-corrected together. ``notes`` holds the warnings about what the
    runs cover (different query sets, little overlap with the qrels).
    """

    baseline: str
    runs: list[str]
    metrics: list[str]
    results: dict[str, EvalResult]
    tests: list[PairedTest]
    alpha: float
    rel: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def means(self) -> dict[str, dict[str, float]]:
        """run -> metric -> mean."""
        return {name: dict(self.results[name].aggregate) for name in self.runs}

    def test(self, run: str, metric: str) -> PairedTest:
        for paired in self.tests:
            if paired.run == run and paired.metric == metric:
                return paired
        raise KeyError(
            f"no test of run {run!r} on metric {metric!r}; runs: {self.runs[1:]}, metrics: {self.metrics}"
        )

    def to_markdown(self, digits: int = 4, details: bool = True) -> str:
        """A markdown table of means, runs as rows; † marks a significant difference from the baseline.

        Non-baseline cells read ``mean† (p)`` with the Holm-corrected p-value. With ``details``, a second table
        gives the number of common queries, mean difference, t, raw and corrected p and win/tie/loss.
        """
        header = ["run", *self.metrics]
        lines = [_md_row(header), _md_row(["---", *(["---:"] * len(self.metrics))])]
        for name in self.runs:
            cells = [f"{name} (baseline)" if name == self.baseline else name]
            for metric in self.metrics:
                mean = f"{self.results[name].aggregate[metric]:.{digits}f}"
                if name != self.baseline:
                    paired = self.test(name, metric)
                    mean += ("†" if paired.significant else "") + f" ({_format_p(paired.p_holm)})"
                cells.append(mean)
            lines.append(_md_row(cells))
        n_tests = sum(not math.isnan(t.p) for t in self.tests)
        lines += [
            "",
            f"† p ≤ {self.alpha} in a paired two-sided t-test against {self.baseline}, Holm–Bonferroni-corrected over "
            f"{n_tests} comparisons (runs × metrics); the p-values in brackets are the corrected ones.",
        ]
        lines += ["", "Queries each mean is over, and how much of each run the qrels judge:", ""]
        lines += [
            _md_row(["run", "queries", "run queries judged", "Judged@10"]),
            _md_row(["---", "---:", "---:", "---:"]),
        ]
        for name in self.runs:
            result = self.results[name]
            coverage = result.coverage
            judged = (
                [f"{coverage.judged_queries}/{coverage.run_queries}", f"{coverage.judged_at_10:.{digits}f}"]
                if coverage is not None
                else ["n/a", "n/a"]
            )
            lines.append(_md_row([name, str(len(result.query_ids)), *judged]))
        if self.notes:
            lines += ["", *(f"**Warning:** {note}" for note in self.notes)]
        if details:
            lines += [
                "",
                _md_row(["run", "metric", "queries", "Δ mean", "t", "p", "p (Holm)", "win/tie/loss"]),
                _md_row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"]),
            ]
            for paired in self.tests:
                lines.append(
                    _md_row(
                        [
                            paired.run,
                            paired.metric,
                            str(paired.n),
                            f"{paired.mean_diff:+.{digits}f}",
                            f"{paired.t:.2f}",
                            _format_p(paired.p),
                            _format_p(paired.p_holm) + ("†" if paired.significant else ""),
                            f"{paired.wins}/{paired.ties}/{paired.losses}",
                        ]
                    )
                )
        return "\n".join(lines) + "\n"

    def write_per_query_csv(self, path: str | Path) -> None:
        """Write ``metric,query_id,<run>,...`` atomically (baseline column first); blank where a run lacks a query."""
        with atomic_write(path) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["metric", "query_id", *self.runs])
            for metric in self.metrics:
                query_ids = sorted(
                    {qid for name in self.runs for qid in self.results[name].per_query[metric]}
                )
                for query_id in query_ids:
                    row = [self.results[name].per_query[metric].get(query_id) for name in self.runs]
                    writer.writerow([metric, query_id, *("" if v is None else repr(v) for v in row)])


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return f"p={p:.3f}" if p >= 0.001 else f"p={p:.1e}"


def compare(
    runs: Mapping[str, Iterable[ScoredDoc]],
    baseline: str,
    qrels: Iterable[Qrel],
    metrics: Sequence[str] | str,
    rel: int | None = None,
    alpha: float = 0.05,
    missing: MissingQueries = "ignore",
    strict: bool = False,
) -> Comparison:
    """Evaluate every run and test each against ``runs[baseline]`` (see the module docstring).

    ``rel`` and ``missing`` are passed to :func:`~auxir.evaluation.metrics.evaluate`. The tests pair the
    queries that both the run and the baseline were evaluated on. Runs evaluated on different query sets
    are logged as a warning and noted in :attr:`Comparison.notes`; with ``strict=True`` they raise
    ``ValueError`` instead.
    """
    if baseline not in runs:
        raise ValueError(
            f"compare: expected the baseline {baseline!r} among the runs, found runs {sorted(runs)}"
        )
    if len(runs) < 2:
        raise ValueError(
            f"compare: expected the baseline and at least one other run, found only {sorted(runs)}"
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"compare: expected a significance level 0 < alpha < 1, found {alpha!r}")
    metric_names = [metrics] if isinstance(metrics, str) else list(dict.fromkeys(metrics))
    qrels = list(qrels)
    names = [baseline, *(name for name in runs if name != baseline)]
    results: dict[str, EvalResult] = {}
    for name in names:
        try:
            results[name] = evaluate(runs[name], qrels, metric_names, rel=rel, missing=missing)
        except ValueError as error:
            raise ValueError(f"compare: run {name!r}: {error}") from error

    notes = _coverage_notes(results)
    mismatch = _query_set_mismatch(results, baseline)
    if mismatch is not None:
        if strict:
            raise ValueError(f"compare: expected every run evaluated on the same queries, found {mismatch}")
        notes.insert(0, mismatch)
    for note in notes:
        logger.warning("compare: %s", note)

    base = results[baseline]
    raw: list[dict] = []
    for name in names[1:]:
        for metric in metric_names:
            ours, theirs = results[name].per_query[metric], base.per_query[metric]
            common = sorted(ours.keys() & theirs.keys())
            values = [ours[q] for q in common]
            base_values = [theirs[q] for q in common]
            diffs = [a - b for a, b in zip(values, base_values, strict=True)]
            ttest = paired_t_test(values, base_values)
            raw.append(
                dict(
                    run=name,
                    metric=metric,
                    n=len(common),
                    run_mean=_mean(values),
                    baseline_mean=_mean(base_values),
                    mean_diff=_mean(diffs),
                    t=ttest.t,
                    p=ttest.p,
                    wins=sum(d >= TIE_TOLERANCE for d in diffs),
                    ties=sum(abs(d) < TIE_TOLERANCE for d in diffs),
                    losses=sum(d <= -TIE_TOLERANCE for d in diffs),
                )
            )
    corrected = holm_bonferroni([entry["p"] for entry in raw])
    tests = [
        PairedTest(**entry, p_holm=p_holm, significant=not math.isnan(p_holm) and p_holm <= alpha)
        for entry, p_holm in zip(raw, corrected, strict=True)
    ]
    return Comparison(
        baseline=baseline,
        runs=names,
        metrics=metric_names,
        results=results,
        tests=tests,
        alpha=alpha,
        rel=rel,
        notes=notes,
    )


def _query_set_mismatch(results: Mapping[str, EvalResult], baseline: str) -> str | None:
    """A sentence saying how the runs' evaluated query sets differ from the baseline's, or None."""
    base = set(results[baseline].query_ids)
    differing = []
    for name, result in results.items():
        ours = set(result.query_ids)
        if name != baseline and ours != base:
            differing.append(
                f"{name!r} on {len(ours)} ({len(ours - base)} not in the baseline's, "
                f"{len(base - ours)} of the baseline's missing)"
            )
    if not differing:
        return None
    return (
        f"runs evaluated on different queries: baseline {baseline!r} on {len(base)}, {'; '.join(differing)}. "
        "Their means are over different query sets and are not comparable; the paired tests use only the "
        "common queries (evaluate with missing='zero' to count every judged query)"
    )


def _coverage_notes(results: Mapping[str, EvalResult]) -> list[str]:
    notes = []
    for name, result in results.items():
        if result.coverage is not None:
            notes += [f"run {name!r}: {warning}" for warning in result.coverage.warnings()]
    return notes


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
