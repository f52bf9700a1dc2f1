"""An endless, resumable, rank-sharded training sampler that hands out ``(index, seed)`` keys.

Epoch ``e`` is a permutation drawn from ``(seed, e)`` alone, split across ranks (each rank gets
``ceil(n / world_size)`` positions, wrapping round, so ranks stay in step). The k-th key this
rank yields carries the sample seed ``stable_seed(seed, rank, k)``: crops, flips and noise are a
pure function of the position in the stream, whatever the DataLoader worker count.

Because position k fixes everything, resuming after ``consumed`` samples starts the stream at
k = consumed directly: nothing already trained is read again.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from restore.data.base import stable_seed


class ResumableSampler(Sampler[tuple[int, int]]):
    def __init__(self, length: int, seed: int, rank: int = 0, world_size: int = 1, start: int = 0) -> None:
        if length <= 0:
            raise ValueError("the training set is empty")
        self.length, self.seed, self.rank, self.world_size = length, int(seed), rank, world_size
        self.start = int(start)
        self.per_rank = -(-length // world_size)

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's dataset indices for ``epoch``, in order."""
        g = torch.Generator()
        g.manual_seed(stable_seed(self.seed, "epoch", epoch))
        perm = torch.randperm(self.length, generator=g).tolist()
        total = self.per_rank * self.world_size
        perm = (perm * (total // self.length + 1))[:total]
        return perm[self.rank :: self.world_size]

    def key(self, position: int) -> tuple[int, int]:
        """The ``(index, sample_seed)`` at this rank's ``position`` in the stream."""
        epoch, offset = divmod(position, self.per_rank)
        return self.epoch_indices(epoch)[offset], stable_seed(self.seed, "sample", self.rank, position)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        epoch, offset = divmod(position, self.per_rank)
        while True:
            indices = self.epoch_indices(epoch)
            for i in range(offset, self.per_rank):
                yield indices[i], stable_seed(self.seed, "sample", self.rank, position)
                position += 1
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:  # endless; DataLoader only needs a length for its own progress hints
        return 2**62
