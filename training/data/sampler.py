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


class BucketBatchSampler(EpochBatchSampler):
    """``EpochBatchSampler`` whose batches each hold one aspect-ratio bucket: epoch e's permutation of ``indices``
    (drawn from (seed, e)) is split by bucket (``buckets``: the bucket of each dataset index), each bucket's run cut
    into batches (its incomplete tail dropped), and the batches shuffled with the same generator; process ``rank`` of
    ``world`` takes every world-th batch. Keys, ``start`` and resume as ``EpochBatchSampler``'s."""

    def __init__(self, indices, buckets, batch_size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        self.buckets = np.asarray(buckets, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        counts = np.bincount(self.buckets[indices])
        self.total_batches = int((counts // batch_size).sum())
        self.indices, self.batch_size, self.seed, self.start = indices, batch_size, seed, start
        self.rank, self.world = rank, world
        self.batches_per_epoch = self.total_batches // world
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{len(indices)} training samples in {np.count_nonzero(counts)} aspect-ratio bucket(s) cannot fill one "
                f"batch of {batch_size} of one bucket on {world} process(es); add data, lower --train_batch_size, or "
                "turn --aspect_buckets off"
            )

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.indices)
        batches = []
        for bucket in np.unique(self.buckets[order]):
            members = order[self.buckets[order] == bucket]
            whole = len(members) // self.batch_size * self.batch_size
            batches.extend(np.split(members[:whole], whole // self.batch_size) if whole else [])
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        consumed = self.start
        epoch, batch = self.position(consumed)
        while True:
            batches = self._epoch_batches(epoch)
            for b in range(batch, self.batches_per_epoch):
                yield [(epoch, int(i), consumed) for i in batches[b * self.world + self.rank]]
                consumed += 1
            epoch, batch = epoch + 1, 0
