"""Batches of training groups: dynamic padding and length-grouped order."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from auxir.data.token_cache import TokenCache, pad_stack


@dataclass
class GroupBatch:
    """B groups of G documents each; document 0 of every group is its positive."""

    query: torch.Tensor  # (B, Lq) token ids, right-padded
    query_len: torch.Tensor  # (B,)
    docs: torch.Tensor  # (B, G, Ld)
    doc_len: torch.Tensor  # (B, G)
    labels: torch.Tensor  # (B, G) graded relevance (negatives 0)
    query_ids: list[str]
    doc_ids: list[list[str]]

    @property
    def group_size(self) -> int:
        return self.docs.shape[1]

    def to(self, device: torch.device | str) -> GroupBatch:
        moved = {
            f.name: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return GroupBatch(**moved)


class GroupCollator:
    def __init__(self, queries: TokenCache, docs: TokenCache, pad_id: int):
        self.queries, self.docs, self.pad_id = queries, docs, pad_id

    def __call__(self, items: list[tuple[str, list[str], list[int]]]) -> GroupBatch:
        group = len(items[0][1])
        query, query_len = pad_stack([self.queries[q] for q, _, _ in items], self.pad_id)
        flat, flat_len = pad_stack([self.docs[d] for _, ds, _ in items for d in ds], self.pad_id)
        return GroupBatch(
            query=torch.from_numpy(query),
            query_len=torch.from_numpy(query_len),
            docs=torch.from_numpy(flat).view(len(items), group, -1),
            doc_len=torch.from_numpy(flat_len).view(len(items), group),
            labels=torch.tensor([labels for _, _, labels in items], dtype=torch.float32),
            query_ids=[q for q, _, _ in items],
            doc_ids=[list(ds) for _, ds, _ in items],
        )


def shard(batches: list, rank: int, world_size: int) -> list:
    """This process's batches under DDP: every ``world_size``-th from ``rank``, the same count on every process
    (the last few are dropped so that no process waits for a batch the others do not have)."""
    return batches[rank::world_size][: len(batches) // world_size]


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, megabatch: int = 32
) -> list[np.ndarray]:
    """Shuffle, then sort within mega-batches of ``megabatch`` batches so a batch holds similar lengths.

    The same idea as Hugging Face's ``LengthGroupedSampler``: little padding, yet a random order of
    batches. Deterministic in (seed, epoch), which is what resuming relies on.
    """
    rng = np.random.default_rng([seed, epoch, 1])
    order = rng.permutation(len(lengths))
    span = batch_size * megabatch
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches
