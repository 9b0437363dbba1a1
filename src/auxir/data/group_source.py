"""The trainer's batch source for reranker training: groups drawn per epoch, length-grouped, sharded."""

from __future__ import annotations

import numpy as np

from auxir.data.collate import GroupBatch, GroupCollator, length_grouped_batches, shard
from auxir.data.samples import SampleConfig, TrainingSamples


class GroupBatchSource:
    """Batches of ``batch_size`` groups; under DDP each process takes every ``world_size``-th batch."""

    def __init__(
        self,
        samples: TrainingSamples,
        config: SampleConfig,
        collator: GroupCollator,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not samples.groups:
            raise ValueError("no training group: every query lacked a positive or a negative (see the log)")
        self.samples, self.config, self.collator = samples, config, collator
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self._epoch: int | None = None

    def _prepare(self, epoch: int) -> None:
        if self._epoch == epoch:
            return
        self._items = self.samples.epoch(epoch, self.config)
        lengths = np.array(
            [len(self.collator.queries[q]) + len(self.collator.docs[d[0]]) for q, d, _ in self._items]
        )
        batches = length_grouped_batches(lengths, self.batch_size, self.config.seed, epoch)
        self._batches = shard(batches, self.rank, self.world_size)
        self._epoch = epoch

    def num_batches(self, epoch: int) -> int:
        self._prepare(epoch)
        return len(self._batches)

    def batch(self, epoch: int, index: int) -> GroupBatch:
        self._prepare(epoch)
        return self.collator([self._items[i] for i in self._batches[index]])

    def units(self, batch: GroupBatch) -> int:
        return batch.docs.shape[0] * batch.docs.shape[1]
