"""Batches of one source each, deterministic per ``(seed, epoch)``, sharded over DDP ranks, resumable mid-epoch.

Each batch holds samples of ONE source (band lists differ between sources, and tiling bands to fixed slots is not
needed, see :mod:`~smarties_terratorch.models.mae`). :class:`SourceBatchSampler` draws them with a seeded generator
per epoch, gives every sample its own augmentation seed, shards the epoch's batch list over DDP ranks (rank ``r``
gets batches ``r, r + N, ...``) and can start an epoch late; :class:`ResumableDataLoader` saves that position in
Lightning checkpoints, so a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

__all__ = ["ResumableDataLoader", "SourceBatchSampler"]


class SourceBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of one source each, deterministic per ``(seed, epoch)``, sharded over DDP ranks, resumable.

    Args:
        sizes: samples per source.
        batch_size: samples per batch (per rank).
        repeats: times each source's samples appear per epoch.
        shuffle: shuffle samples and batch order.
        drop_last: drop each source's incomplete last batch.
        seed: base seed.
        num_replicas, rank: DDP world size and rank (default: from ``torch.distributed`` when initialised).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        repeats: Sequence[int] | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.num_replicas = (
            num_replicas if num_replicas is not None else (torch.distributed.get_world_size() if dist else 1)
        )
        self.rank = rank if rank is not None else (torch.distributed.get_rank() if dist else 0)
        self.sizes, self.batch_size = list(sizes), batch_size
        self.repeats = list(repeats) if repeats is not None else [1] * len(self.sizes)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.epoch = 0
        self.resume_at: tuple[int, int] | None = None  # (epoch, batches already consumed in it)
        # Lightning calls `batch_sampler.sampler.set_epoch(epoch)` at each epoch start.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[tuple[int, int]]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        batches: list[list[int]] = []
        offset = 0
        for size, repeat in zip(self.sizes, self.repeats):
            idx = torch.arange(offset, offset + size).repeat(repeat)
            if self.shuffle:
                idx = idx[torch.randperm(len(idx), generator=gen)]
            chunks = [idx[i : i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size)]
            if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
                chunks.pop()
            batches += chunks
            offset += size
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        per_rank = len(batches) // self.num_replicas  # equal counts on every rank (DDP needs that)
        # Augmentation seeds are drawn for the whole batch list before sharding, so rank r's batch k is exactly
        # batch k * num_replicas + r of a single process (same samples, same seeds).
        seeds = torch.randint(0, 2**31 - 1, (per_rank * self.num_replicas, self.batch_size), generator=gen).tolist()
        pairs = [list(zip(b, s)) for b, s in zip(batches, seeds)]
        return pairs[self.rank :: self.num_replicas][:per_rank]

    def resume(self, epoch: int, consumed: int) -> None:
        """Start at batch ``consumed`` of ``epoch``: set the epoch and skip its first ``consumed`` batches.

        The skip belongs to that epoch, not to the next iterator: a loader may be iterated more than once for
        one epoch (Lightning prefetches from an iterator it may discard), and every iteration of the resumed
        epoch starts at the same position; iterations of other epochs start at batch 0.
        """
        if consumed >= len(self):  # saved after the last batch of an epoch: start the next one
            epoch, consumed = epoch + 1, 0
        self.set_epoch(epoch)
        self.resume_at = (epoch, consumed)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        skip = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch else 0
        yield from self._all_batches()[skip:]

    def __len__(self) -> int:
        full = 0
        for size, repeat in zip(self.sizes, self.repeats):
            n = size * repeat
            full += n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return full // self.num_replicas


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`SourceBatchSampler` whose position Lightning stores in checkpoints.

    ``progress`` returns how many batches of the current epoch the trainer has consumed (the loader itself runs
    ahead because Lightning prefetches), so a checkpoint taken after step ``k`` resumes at batch ``k + 1``.
    Lightning hands the saved state to the loader only if its fit loop builds the loader after restoring the
    checkpoint: code that reads ``trainer.estimated_stepping_batches`` in ``configure_optimizers`` builds it
    earlier and loses the position (see :meth:`SmartiesPretrainTask.stepping_batches
    <smarties_terratorch.tasks.pretrain.SmartiesPretrainTask.stepping_batches>`).
    """

    def __init__(self, *args: Any, progress: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "consumed": int(self._progress()) if self._progress else 0}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.batch_sampler.resume(int(state["epoch"]), int(state["consumed"]))
