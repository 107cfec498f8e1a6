"""A resumable, seeded sampler (DistributedSampler semantics, one or many processes).

Each epoch is a permutation drawn from ``seed + epoch`` (torch's DistributedSampler
recipe: padded to a multiple of the world size, rank ``r`` takes ``r::world``). It
yields ``(index, epoch, seed)`` keys that :class:`~dpdeblur.data.patches.PatchDataset`
turns into deterministic augmentation, and can start mid-epoch (``start``), so a
resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from typing import Iterator

from torch.utils.data.distributed import DistributedSampler

__all__ = ["ResumableSampler"]


class ResumableSampler(DistributedSampler):
    def __init__(self, dataset, rank: int = 0, world: int = 1, shuffle: bool = True, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its ``start``-th sample (this rank's count)."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        idx = list(super().__iter__())
        for i in idx[self.start :]:
            yield (int(i), self.epoch, self.seed)

    def __len__(self) -> int:
        return self.num_samples - self.start
