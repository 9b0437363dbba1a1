"""CODER's training lists: per query its top-N first-stage candidates, as rows of a document-embedding store.

CODER (Zerveas et al., EMNLP 2022, §2.2) scores, for each training query, the N candidates a first stage
retrieved for it (N = 1000 in the paper) from **precomputed** document embeddings, "along with the positive
(ground-truth) document" even where the first stage missed it (§4.4, footnote 3). This module keeps those
lists compactly and turns them into batches:

* :func:`build_candidate_lists` — row indices into the store (int32) and graded labels from the qrels
  (int8), ground-truth positives put in place of the lowest non-relevant candidates where missing;
  queries with no judged positive among their candidates are left out and counted;
* :class:`CandidateLists` — the lists with their query ids, saved as one ``.npz`` file (no pickle);
* :class:`CandidateBatchSource` — the trainer's batches (:class:`CandidateBatch`): query token ids and,
  per query, the ``(N, dim)`` candidate embeddings gathered from the store, labels and a mask;
  deterministic in (seed, epoch), sharded by rank like :class:`~auxir.data.group_source.GroupBatchSource`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from auxir.data.collate import shard
from auxir.data.records import Qrel, ScoredDoc
from auxir.data.token_cache import TokenCache, pad_stack
from auxir.data.trec import group_by_query
from auxir.io import atomic_write

log = logging.getLogger(__name__)

PAD_ROW = -1  # a list shorter than N (the first stage found fewer documents) is padded with this row
_LABEL_RANGE = (0, int(np.iinfo(np.int8).max))


@dataclass
class CandidateLists:
    """Query ``query_ids[i]`` has candidates ``rows[i]`` (rows of the embedding store) with ``labels[i]``."""

    query_ids: list[str]
    rows: np.ndarray  # (Q, N) int32; PAD_ROW where the list is shorter than N
    labels: np.ndarray  # (Q, N) int8 graded relevance; 0 = not judged relevant (and padding)
    skipped_no_positive: int = 0  # queries left out: no judged positive among their candidates
    injected: int = 0  # positives put in the lists because the first stage missed them

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.shape != self.labels.shape:
            raise ValueError(
                f"CandidateLists: expected rows and labels of one shape (queries, N), found "
                f"{self.rows.shape} and {self.labels.shape}"
            )
        if len(self.query_ids) != self.rows.shape[0]:
            raise ValueError(
                f"CandidateLists: expected one query id per list, found {len(self.query_ids)} ids "
                f"for {self.rows.shape[0]} lists"
            )

    def __len__(self) -> int:
        return len(self.query_ids)

    @property
    def num_candidates(self) -> int:
        return int(self.rows.shape[1])

    def save(self, path: str | Path) -> None:
        """One ``.npz`` file (written atomically): query ids, int32 rows, int8 labels and the counts."""
        with atomic_write(path, mode="wb") as handle:
            np.savez(
                handle,
                query_ids=np.asarray(self.query_ids, dtype=np.str_),
                rows=self.rows.astype(np.int32, copy=False),
                labels=self.labels.astype(np.int8, copy=False),
                counts=np.asarray([self.skipped_no_positive, self.injected], dtype=np.int64),
            )

    @classmethod
    def load(cls, path: str | Path) -> CandidateLists:
        with np.load(path, allow_pickle=False) as data:
            missing = sorted({"query_ids", "rows", "labels", "counts"} - set(data.files))
            if missing:
                raise ValueError(f"{path}: expected candidate lists, found no array(s) {missing}")
            skipped, injected = (int(v) for v in data["counts"])
            return cls([str(q) for q in data["query_ids"]], data["rows"], data["labels"], skipped, injected)


def build_candidate_lists(
    query_ids: Sequence[str],
    run: Iterable[ScoredDoc],
    qrels: Iterable[Qrel],
    row_of: Mapping[str, int],
    num_candidates: int,
    inject_positives: bool = True,
) -> CandidateLists:
    """Each query's top ``num_candidates`` documents of ``run`` (best first) as rows of the store ``row_of``.

    Labels are the qrels' relevance (negative grades count as 0). With ``inject_positives``, the query's
    judged positives that the first stage missed take the places of its lowest-ranked non-relevant
    candidates (of padding first, when the list is short), highest grade first. Documents absent from
    ``row_of`` cannot be scored and are left out (one warning); queries with no positive among their
    candidates are left out and counted in ``skipped_no_positive``.

    >>> lists = build_candidate_lists(
    ...     ["q"], [ScoredDoc("q", "a", 2.0), ScoredDoc("q", "b", 1.0)], [Qrel("q", "c", 1)],
    ...     {"a": 0, "b": 1, "c": 2}, num_candidates=2)
    >>> lists.rows.tolist(), lists.labels.tolist()
    ([[0, 2]], [[0, 1]])
    """
    if num_candidates < 1:
        raise ValueError(f"build_candidate_lists: expected num_candidates >= 1, found {num_candidates}")
    wanted = set(query_ids)
    judged: dict[str, dict[str, int]] = {}
    for qrel in qrels:
        if qrel.query_id in wanted:
            judged.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    ranked = group_by_query(s for s in run if s.query_id in wanted)

    kept_ids: list[str] = []
    kept_rows: list[np.ndarray] = []
    kept_labels: list[np.ndarray] = []
    skipped = injected = unknown = 0
    for query_id in dict.fromkeys(query_ids):
        grades = judged.get(query_id, {})
        docs = []
        for scored in ranked.get(query_id, []):
            if scored.doc_id not in row_of:
                unknown += 1
                continue
            docs.append(scored.doc_id)
            if len(docs) == num_candidates:
                break
        if inject_positives:
            present = set(docs)
            missing = sorted(
                (d for d, g in grades.items() if g > 0 and d not in present and d in row_of),
                key=lambda d: (-grades[d], d),
            )
            injected += _inject(docs, missing, grades, num_candidates)
        labels = [_label(grades.get(d, 0), query_id, d) for d in docs]
        if not any(labels):
            skipped += 1
            continue
        pad = num_candidates - len(docs)
        kept_ids.append(query_id)
        kept_rows.append(np.asarray([row_of[d] for d in docs] + [PAD_ROW] * pad, dtype=np.int32))
        kept_labels.append(np.asarray(labels + [0] * pad, dtype=np.int8))
    if unknown:
        log.warning(
            "candidate lists: %d first-stage documents are not in the embedding store; left out", unknown
        )
    shape = (0, num_candidates)
    return CandidateLists(
        kept_ids,
        np.stack(kept_rows) if kept_rows else np.empty(shape, dtype=np.int32),
        np.stack(kept_labels) if kept_labels else np.empty(shape, dtype=np.int8),
        skipped_no_positive=skipped,
        injected=injected,
    )


def _inject(docs: list[str], missing: list[str], grades: Mapping[str, int], n: int) -> int:
    """Put ``missing`` positives into ``docs`` (in place): into free places, then over the lowest negatives."""
    done = 0
    replace_at = len(docs) - 1
    for doc_id in missing:
        if len(docs) < n:
            docs.append(doc_id)
        else:
            while replace_at >= 0 and grades.get(docs[replace_at], 0) > 0:
                replace_at -= 1
            if replace_at < 0:
                break  # the list holds positives only
            docs[replace_at] = doc_id
            replace_at -= 1
        done += 1
    return done


def _label(grade: int, query_id: str, doc_id: str) -> int:
    low, high = _LABEL_RANGE
    if grade > high:
        raise ValueError(
            f"qrels: expected relevance grades up to {high} for the int8 candidate labels, found {grade} "
            f"for query {query_id!r}, document {doc_id!r}"
        )
    return max(grade, low)


@dataclass
class CandidateBatch:
    """B queries with N candidate document embeddings each (CODER's training unit)."""

    query: torch.Tensor  # (B, Lq) token ids without special tokens, right-padded
    query_len: torch.Tensor  # (B,)
    doc_emb: torch.Tensor  # (B, N, D) candidate embeddings from the store (float16 or float32)
    labels: torch.Tensor  # (B, N) float32 graded relevance; 0 = not relevant
    mask: torch.Tensor  # (B, N) bool; False = padding (no candidate)
    query_ids: list[str]

    def to(self, device: torch.device | str) -> CandidateBatch:
        moved = {
            f.name: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return CandidateBatch(**moved)


class CandidateBatchSource:
    """Batches of ``batch_size`` queries in a random order per epoch; under DDP each process takes every
    ``world_size``-th batch (all processes the same number)."""

    def __init__(
        self,
        lists: CandidateLists,
        embeddings: torch.Tensor,
        queries: TokenCache,
        pad_id: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not len(lists):
            raise ValueError(
                "no training query: none has a judged positive among its candidates "
                f"({lists.skipped_no_positive} skipped)"
            )
        if embeddings.ndim != 2:
            raise ValueError(
                f"CandidateBatchSource: expected (count, dim) embeddings, found {tuple(embeddings.shape)}"
            )
        top = int(lists.rows.max(initial=PAD_ROW))
        if top >= embeddings.shape[0]:
            raise ValueError(
                f"CandidateBatchSource: candidate row {top} is outside the store of {embeddings.shape[0]} embeddings"
            )
        absent = [q for q in lists.query_ids if q not in queries]
        if absent:
            raise ValueError(
                f"CandidateBatchSource: {len(absent)} queries are not tokenised (first: {absent[0]!r})"
            )
        self.lists, self.embeddings, self.queries, self.pad_id = lists, embeddings, queries, pad_id
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self._epoch: int | None = None

    def _prepare(self, epoch: int) -> None:
        if self._epoch == epoch:
            return
        order = np.random.default_rng([self.seed, epoch, 2]).permutation(len(self.lists))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        self._batches = shard(batches, self.rank, self.world_size)
        self._epoch = epoch

    def num_batches(self, epoch: int) -> int:
        self._prepare(epoch)
        return len(self._batches)

    def batch(self, epoch: int, index: int) -> CandidateBatch:
        self._prepare(epoch)
        picked = self._batches[index]
        query_ids = [self.lists.query_ids[i] for i in picked]
        query, query_len = pad_stack([self.queries[q] for q in query_ids], self.pad_id)
        rows = torch.from_numpy(self.lists.rows[picked].astype(np.int64))  # (B, N)
        mask = rows != PAD_ROW
        return CandidateBatch(
            query=torch.from_numpy(query),
            query_len=torch.from_numpy(query_len),
            doc_emb=self.embeddings[rows.clamp(min=0)],  # (B, N, D)
            labels=torch.from_numpy(self.lists.labels[picked].astype(np.float32)),
            mask=mask,
            query_ids=query_ids,
        )

    def units(self, batch: CandidateBatch) -> int:
        return batch.doc_emb.shape[0] * batch.doc_emb.shape[1]  # candidates scored (padding included)
