"""Shuffled, sharded, resumable batches of (epoch, index, micro-batch number) keys."""
from __future__ import annotations

import numpy as np


class EpochBatchSampler:
    """Infinite batch sampler: epoch e is a permutation of ``indices`` drawn from (seed, e), cut into
    batches of ``batch_size`` (the incomplete tail is dropped); process ``rank`` of ``world`` takes every
    world-th batch. ``start`` skips that many of this process's batches: the resume position. A key is
    (epoch, index, this process's micro-batch number counted from the start of the run)."""

    def __init__(self, indices, batch_size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size, self.seed, self.start, self.rank, self.world = batch_size, seed, start, rank, world
        self.batches_per_epoch = len(self.indices) // (batch_size * world)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{len(self.indices)} training samples cannot fill one batch of {batch_size} on {world} process(es); "
                "add data or lower --train_batch_size"
            )

    def position(self, consumed: int) -> tuple[int, int]:
        """(epoch, batch in epoch) of this process's ``consumed``-th batch."""
        return divmod(consumed, self.batches_per_epoch)

    def __iter__(self):
        consumed = self.start
        epoch, batch = self.position(consumed)
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.indices)
            for b in range(batch, self.batches_per_epoch):
                first = (b * self.world + self.rank) * self.batch_size
                yield [(epoch, int(i), consumed) for i in order[first : first + self.batch_size]]
                consumed += 1
            epoch, batch = epoch + 1, 0
