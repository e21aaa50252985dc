"""Deterministic, resumable batch order for iteration-based training, DDP-aware.

Epoch ``e`` uses a permutation of the dataset drawn from (seed, e); global batch ``i`` of the
run is the ``i % per_epoch``-th slice of ``batch_size`` indices of epoch ``i // per_epoch``
(the remainder of an epoch is dropped). Rank ``r`` of ``world`` takes every ``world``-th index of
each global batch, so the union of the ranks' batches is exactly the single-process batch. Items
are ``(index, epoch)`` pairs (the dataset seeds its augmentation from them). Starting at any
iteration reproduces the same stream: this is what makes ``--resume`` exact.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class IterationBatchSampler(Sampler[list[tuple[int, int]]]):
    def __init__(self, size: int, batch_size: int, iterations: int, seed: int = 0, start: int = 0, rank: int = 0, world: int = 1) -> None:
        if batch_size % world:
            raise ValueError(f"global batch size {batch_size} is not divisible by {world} processes")
        if size < batch_size:
            raise ValueError(f"dataset has {size} samples, fewer than one batch of {batch_size}")
        self.size, self.batch_size, self.iterations = size, batch_size, iterations
        self.seed, self.start, self.rank, self.world = seed, start, rank, world
        self.per_epoch = size // batch_size

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch, 0xBA7C4])).permutation(self.size)

    def global_batch(self, iteration: int) -> tuple[np.ndarray, int]:
        epoch, j = divmod(iteration, self.per_epoch)
        return self.permutation(epoch)[j * self.batch_size : (j + 1) * self.batch_size], epoch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        cached_epoch, perm = -1, None
        for it in range(self.start, self.iterations):
            epoch, j = divmod(it, self.per_epoch)
            if epoch != cached_epoch:
                cached_epoch, perm = epoch, self.permutation(epoch)
            batch = perm[j * self.batch_size : (j + 1) * self.batch_size]
            yield [(int(i), epoch) for i in batch[self.rank :: self.world]]

    def __len__(self) -> int:
        return max(0, self.iterations - self.start)
