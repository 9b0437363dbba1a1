"""Retrieval metrics: a thin layer over ir_measures (pytrec_eval / trec_eval underneath).

Metric names are ir_measures' declarative syntax (https://ir-measur.es/en/latest/measures.html):
``nDCG@10``, ``RR@10``, ``RR(rel=2)@10``, ``P@20``, ``R@100``, ``AP``, ``Judged@10``, ...

Relevance threshold (``rel``)
    ``rel`` is applied to every requested metric that takes ir_measures' ``rel`` parameter (the binary ones:
    ``P``, ``R``, ``RR``, ``AP``, ``Success``, ``Rprec``, ``SetP``, ...) and does not already set it, exactly
    as ``trec_eval -l rel`` would. ``nDCG`` takes no ``rel`` in ir_measures: it is graded, the grades are its
    gains (trec_eval's ``ndcg_cut``), and pytrec_eval's ``relevance_level`` does not change it; this is the
    TREC Deep Learning convention too (nDCG on all grades, MRR/MAP/recall with ``-l 2``). ``Judged`` has no
    ``rel`` either. An explicit ``RR(rel=1)@10`` is kept as written even when ``rel=2`` is given.

Queries present in the qrels but absent from the run (``missing``)
    ``"ignore"`` (default) is trec_eval's default: the mean is over the queries that are in the run *and*
    have judgements. ``"zero"`` is ``trec_eval -c``: every judged query counts, a missing one scores the
    metric's default (0). ir_measures (0.4.3) itself fills such queries in like ``-c``, so ``"ignore"``
    drops them again. Queries in the run without judgements are ignored in both modes, as in trec_eval.

Ties in score are broken as trec_eval does (doc id descending), whatever order the run lists them in, and
for every metric alike: ir_measures picks a provider per metric, and the one it picks for ``RR@k`` (its
MS MARCO implementation) would break ties by doc id ascending, so the order is fixed before any provider runs.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import ir_measures

from auxir.data.records import Qrel, ScoredDoc
from auxir.io import atomic_write

__all__ = ["Coverage", "EvalResult", "MissingQueries", "evaluate", "parse_metrics"]

MissingQueries = Literal["ignore", "zero"]

VALID_EXAMPLES = "nDCG@10, RR@10, RR(rel=2)@10, P@20, R@100, R(rel=2)@1000, AP, AP(rel=2)@1000, Judged@10"
MEASURES_DOC = "https://ir-measur.es/en/latest/measures.html"


@dataclass(frozen=True)
class Coverage:
    """How much of a run the qrels can judge: the first thing to check when a score looks implausible.

    ``run_queries`` queries are in the run, ``judged_queries`` of them have judgements, and ``judged_at_10``
    is ir_measures' ``Judged@10`` (the fraction of the top 10 documents that are judged) averaged over those
    judged queries. A run evaluated against another collection's qrels shows either few judged queries or,
    when query ids happen to coincide, a Judged@10 near 0.
    """

    run_queries: int
    judged_queries: int
    judged_at_10: float

    @property
    def judged_fraction(self) -> float:
        return self.judged_queries / self.run_queries if self.run_queries else 0.0

    def describe(self) -> str:
        """``45 queries, 45 judged (100%), Judged@10 0.8312``."""
        return (
            f"{self.run_queries} queries, {self.judged_queries} judged ({self.judged_fraction:.0%}), "
            f"Judged@10 {self.judged_at_10:.4f}"
        )

    def warnings(self, min_judged_fraction: float = 0.5, min_judged_at_10: float = 0.02) -> list[str]:
        """Why the run may not belong to these qrels (empty when it plausibly does).

        Judged@10 warns only near zero: collections that judge just the relevant documents (SciFact: 1.1
        a query) give a good run a Judged@10 near 0.1, while a run of another collection scores about 0."""
        found = []
        if self.judged_fraction < min_judged_fraction:
            found.append(
                f"only {self.judged_queries} of its {self.run_queries} queries are judged "
                f"({self.judged_fraction:.0%} < {min_judged_fraction:.0%}): is it a run of this collection and split?"
            )
        if self.judged_at_10 < min_judged_at_10:
            found.append(
                f"Judged@10 is {self.judged_at_10:.4f} (< {min_judged_at_10}): its top documents are almost all "
                "unjudged, so its scores say little (a run of another collection, or ids that do not match?)"
            )
        return found


@dataclass(frozen=True)
class EvalResult:
    """Metric values of one run.

    ``aggregate`` maps each metric name, as it was asked for, to its value over the evaluated queries (a mean
    for every metric listed above; ir_measures' own aggregator is used, so ``NumRet`` and friends are sums).
    ``per_query`` maps metric name -> query id -> value. ``measures`` maps each metric name to the
    ir_measures measure that was computed (``RR@10`` -> ``RR(rel=2)@10`` when ``rel=2``). ``coverage`` says how
    much of the run the qrels judge (see :class:`Coverage`).
    """

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]
    measures: dict[str, str] = field(default_factory=dict)
    rel: int | None = None
    missing: MissingQueries = "ignore"
    coverage: Coverage | None = None

    @property
    def metrics(self) -> list[str]:
        return list(self.aggregate)

    @property
    def query_ids(self) -> list[str]:
        """The evaluated queries (those every metric was averaged over), sorted."""
        ids: set[str] = set()
        for values in self.per_query.values():
            ids.update(values)
        return sorted(ids)

    def to_table(self, digits: int = 4) -> str:
        """A plain-text table, one metric per row: name, computed measure and value."""
        rows = [("metric", "computed as", "value")]
        rows += [
            (name, self.measures.get(name, name), f"{value:.{digits}f}")
            for name, value in self.aggregate.items()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
        lines.append(f"({len(self.query_ids)} queries; missing queries: {self.missing})")
        if self.coverage is not None:
            lines.append(f"run: {self.coverage.describe()}")
            lines += [f"warning: {warning}" for warning in self.coverage.warnings()]
        return "\n".join(lines)

    def write_per_query_csv(self, path: str | Path) -> None:
        """Write ``query_id,<metric>,...`` atomically, one row per evaluated query."""
        names = self.metrics
        with atomic_write(path) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["query_id", *names])
            for query_id in self.query_ids:
                writer.writerow([query_id, *(_cell(self.per_query[name].get(query_id)) for name in names)])


def _cell(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def parse_metrics(metrics: Sequence[str] | str, rel: int | None = None) -> dict[str, ir_measures.Measure]:
    """Parse metric names into ir_measures measures, applying ``rel`` where the measure takes it.

    Raises ``ValueError`` naming the bad metric, why, and valid examples.

    >>> {k: str(v) for k, v in parse_metrics(["nDCG@10", "RR@10"], rel=2).items()}
    {'nDCG@10': 'nDCG@10', 'RR@10': 'RR(rel=2)@10'}
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError(f"evaluate: expected at least one metric name (e.g. {VALID_EXAMPLES}), found none")
    if rel is not None and (isinstance(rel, bool) or not isinstance(rel, int)):
        raise ValueError(f"evaluate: expected an integer relevance threshold rel, found {rel!r}")
    parsed: dict[str, ir_measures.Measure] = {}
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"evaluate: expected metric names as strings, found {name!r}")
        if name in parsed:
            continue
        measure = _parse_one(name)
        if rel is not None and "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params:
            measure = measure(rel=rel)
        parsed[name] = measure
    return parsed


def _parse_one(name: str) -> ir_measures.Measure:
    try:
        measure = ir_measures.parse_measure(name)
        # parse_measure accepts any keyword (nDCG(rel=2)@10 parses); validate_params checks them (by assert).
        measure.validate_params()
        return measure
    except AssertionError as error:
        reason = str(error)
        base = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", name)
        known = getattr(ir_measures.measures, base.group(1), None) if base else None
        if known is not None and hasattr(known, "SUPPORTED_PARAMS"):
            reason += f" ({base.group(1)} takes: {', '.join(known.SUPPORTED_PARAMS)})"
    except (NameError, ValueError, KeyError, SyntaxError, TypeError, AttributeError) as error:
        reason = str(error)
    what = "unknown metric" if "not found" in reason else "invalid metric"
    raise ValueError(
        f"{what} {name!r}: {reason}. Expected ir_measures syntax, e.g. {VALID_EXAMPLES} (see {MEASURES_DOC})"
    )


def _qrels_dict(qrels: Iterable[Qrel]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for qrel in qrels:
        judged = table.setdefault(str(qrel.query_id), {})
        doc_id, grade = str(qrel.doc_id), int(qrel.relevance)
        if judged.get(doc_id, grade) != grade:
            raise ValueError(
                f"evaluate: expected one grade per (query, doc) in the qrels, found query {qrel.query_id!r} "
                f"doc {doc_id!r} judged both {judged[doc_id]} and {grade}"
            )
        judged[doc_id] = grade
    if not table:
        raise ValueError("evaluate: expected relevance judgements, found empty qrels")
    return table


def _run_dict(run: Iterable[ScoredDoc]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for scored in run:
        ranked = table.setdefault(str(scored.query_id), {})
        doc_id = str(scored.doc_id)
        if doc_id in ranked:
            # Silently keeping one of the two scores would change the ranking.
            raise ValueError(
                f"evaluate: expected each doc once per query in the run, found query {scored.query_id!r} doc {doc_id!r} twice"
            )
        ranked[doc_id] = float(scored.score)
    if not table:
        raise ValueError("evaluate: expected a run with at least one scored document, found an empty run")
    # Fix the order once, as trec_eval does (score descending, then doc id descending), and hand the providers
    # ranks as scores: ir_measures' msmarco provider (which computes RR@k) breaks ties by doc id ascending
    # instead, so tied runs would otherwise be ranked differently from one metric to the next.
    for query_id, ranked in table.items():
        order = sorted(ranked.items(), key=lambda item: (item[1], item[0]), reverse=True)
        table[query_id] = {doc_id: float(len(order) - rank) for rank, (doc_id, _) in enumerate(order)}
    return table


def _examples(ids: Iterable[str], n: int = 3) -> str:
    ids = sorted(ids)
    shown = ", ".join(repr(i) for i in ids[:n])
    return f"{len(ids)} (e.g. {shown})" if ids else "0"


def evaluate(
    run: Iterable[ScoredDoc],
    qrels: Iterable[Qrel],
    metrics: Sequence[str] | str,
    rel: int | None = None,
    missing: MissingQueries = "ignore",
) -> EvalResult:
    """Evaluate ``run`` against ``qrels`` with ir_measures.

    ``metrics``: ir_measures names (see the module docstring); ``rel``: relevance threshold for the binary
    metrics (TREC DL: 2); ``missing``: ``"ignore"`` (trec_eval default) or ``"zero"`` (``trec_eval -c``).

    >>> run = [ScoredDoc("q1", "d1", 2.0), ScoredDoc("q1", "d2", 1.0)]
    >>> qrels = [Qrel("q1", "d1", 1), Qrel("q1", "d2", 2)]
    >>> evaluate(run, qrels, ["RR@10"], rel=2).aggregate
    {'RR@10': 0.5}
    """
    if missing not in ("ignore", "zero"):
        raise ValueError(f"evaluate: expected missing='ignore' or 'zero', found {missing!r}")
    measures = parse_metrics(metrics, rel)
    qrels_table = _qrels_dict(qrels)
    run_table = _run_dict(run)
    overlap = run_table.keys() & qrels_table.keys()
    if not overlap:
        raise ValueError(
            f"evaluate: expected the run and the qrels to share query ids, found none in common: "
            f"run queries {_examples(run_table)}, judged queries {_examples(qrels_table)}"
        )
    judged_at_10 = ir_measures.parse_measure("Judged@10")
    distinct = list(dict.fromkeys([*measures.values(), judged_at_10]))
    try:
        evaluator = ir_measures.evaluator(distinct, qrels_table)
    except (ValueError, NotImplementedError, RuntimeError) as error:
        raise ValueError(
            f"evaluate: no installed ir_measures provider computes {[str(m) for m in distinct]}: {error}"
        ) from error

    computed: dict[ir_measures.Measure, dict[str, float]] = {m: {} for m in distinct}
    for metric in evaluator.iter_calc(run_table):
        computed[metric.measure][metric.query_id] = float(metric.value)

    keep = sorted(overlap if missing == "ignore" else qrels_table.keys())
    per_query: dict[str, dict[str, float]] = {}
    aggregate: dict[str, float] = {}
    for name, measure in measures.items():
        # A query the provider skipped scores the measure's default (0), as trec_eval -c counts it.
        values = {qid: computed[measure].get(qid, float(measure.DEFAULT)) for qid in keep}
        aggregator = measure.aggregator()
        for value in values.values():
            aggregator.add(value)
        per_query[name] = values
        aggregate[name] = float(aggregator.result())
    judged = [computed[judged_at_10].get(qid, 0.0) for qid in overlap]
    coverage = Coverage(
        run_queries=len(run_table),
        judged_queries=len(overlap),
        judged_at_10=sum(judged) / len(judged),
    )
    return EvalResult(
        aggregate=aggregate,
        per_query=per_query,
        measures={name: str(measure) for name, measure in measures.items()},
        rel=rel,
        missing=missing,
        coverage=coverage,
    )
