"""Training samples for rerankers: positives from qrels, negatives from a first-stage run.

Each judged-relevant (query, document) pair becomes one group: the positive plus a pool of negatives
(the run's top-k minus every judged positive; judged negatives kept or dropped). The ``n`` negatives a
group trains with are drawn from its pool anew each epoch, seeded by (seed, epoch) so that a resumed
run sees the same samples.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from auxir.data.records import Qrel, ScoredDoc

log = logging.getLogger(__name__)


@dataclass
class SampleConfig:
    num_negatives: int = 1  # negatives per positive (1 = pairs; more = groups)
    negatives_top_k: int = 100  # negatives come from the run's top k
    judged_negatives: bool = True  # keep documents judged non-relevant in the pool
    min_relevance: int = 1  # qrels grade that counts as a positive
    max_positives_per_query: int | None = None
    seed: int = 0


@dataclass
class TrainGroup:
    query_id: str
    positive_id: str
    relevance: int
    negative_pool: list[str]


@dataclass
class TrainingSamples:
    groups: list[TrainGroup]
    skipped_no_positive: int = 0
    skipped_no_negative: int = 0
    notes: list[str] = field(default_factory=list)

    def epoch(self, epoch: int, config: SampleConfig) -> list[tuple[str, list[str], list[int]]]:
        """(query id, [positive, negatives...], [relevance, 0...]) for every group, for this epoch."""
        rng = np.random.default_rng([config.seed, epoch])
        out = []
        for g in self.groups:
            pool = g.negative_pool
            n = config.num_negatives
            picks = rng.choice(len(pool), size=n, replace=len(pool) < n)
            out.append((g.query_id, [g.positive_id, *(pool[i] for i in picks)], [g.relevance] + [0] * n))
        return out


def build_training_samples(
    query_ids: Iterable[str],
    qrels: Iterable[Qrel],
    run: Iterable[ScoredDoc],
    config: SampleConfig,
) -> TrainingSamples:
    """Groups for ``query_ids``; queries without a positive or without any negative are skipped and counted."""
    judged: dict[str, dict[str, int]] = defaultdict(dict)
    for q in qrels:
        judged[q.query_id][q.doc_id] = q.relevance
    ranked: dict[str, list[ScoredDoc]] = defaultdict(list)
    for s in run:
        ranked[s.query_id].append(s)

    rng = np.random.default_rng(config.seed)
    samples = TrainingSamples(groups=[])
    for qid in query_ids:
        grades = judged.get(qid, {})
        positives = sorted(d for d, r in grades.items() if r >= config.min_relevance)
        if not positives:
            samples.skipped_no_positive += 1
            continue
        top = sorted(ranked.get(qid, []), key=lambda s: (-s.score, s.doc_id))[: config.negatives_top_k]
        pool = [
            s.doc_id
            for s in top
            if grades.get(s.doc_id, 0) < config.min_relevance
            and (config.judged_negatives or s.doc_id not in grades)
        ]
        if not pool:
            samples.skipped_no_negative += 1
            continue
        if config.max_positives_per_query and len(positives) > config.max_positives_per_query:
            positives = sorted(
                rng.choice(positives, size=config.max_positives_per_query, replace=False).tolist()
            )
        samples.groups.extend(TrainGroup(qid, p, grades[p], pool) for p in positives)
    if samples.skipped_no_positive or samples.skipped_no_negative:
        log.warning(
            "training samples: skipped %d queries without a positive and %d without a negative",
            samples.skipped_no_positive,
            samples.skipped_no_negative,
        )
    return samples
