"""Training randomness that does not depend on interruptions, processes or dataloader workers.

mmengine seeds torch, numpy and Python once, when the Runner starts, and saves no generator state in its
checkpoints. Every later draw continues one stream per process: a resumed run restarts that stream, the batches a
resumed epoch skips still draw from it, each dataloader worker has its own, and every DDP rank starts with the same
one. So the draws of a training run are re-derived from integers instead of continued:

- a training sample's transforms draw from generators seeded with ``(seed, epoch, sample index)``:
  :class:`SeededSampler` yields ``(index, sample_seed)``, :class:`SeededDataset` loads the sample under
  :func:`seeded`. A sample is augmented the same way whichever rank, worker or batch loads it, before or after a
  resume, and two samples (on one rank or on two) never share a draw;
- a training iteration starts the global generators (dropout, drop-path, batch-level augmentation in the data
  preprocessor) from ``(seed, rank, iteration)``: :func:`seed_everything` with :func:`derive_seed`.

:class:`~petl_vision.engine.ResumableEpochBasedTrainLoop` does both.
"""
import contextlib
import hashlib
import random
from collections import Counter
from collections.abc import Iterator

import numpy as np
import torch
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info


def derive_seed(*values: int) -> int:
    """A 64-bit seed from integers: the first 8 bytes of the blake2b digest of their decimal text."""
    digest = hashlib.blake2b(','.join(str(int(v)) for v in values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, 'little')


def _seed_host(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy's legacy seed is 32-bit


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CPU and every CUDA device)."""
    _seed_host(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int, restore: bool = True) -> Iterator[None]:
    """Inside: Python's, numpy's and torch's CPU global generators start from ``seed``; afterwards (``restore``)
    they continue where they were before, so a sample loaded in the training process leaves no trace in the model's
    draws. A dataloader worker's generators draw for nothing else: it skips the restore (0.1 ms a sample)."""
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state()) if restore else None
    _seed_host(seed)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if saved is not None:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class SeededSampler(Sampler):
    """Wraps a training sampler (a config, built like mmengine builds samplers, or a sampler) and yields
    ``(index, derive_seed(seed, epoch, index))`` for each index it yields, in its order (the ``k``-th repeat of an
    index in the same epoch, ``k >= 1``, gets ``derive_seed(seed, epoch, index, k)``).

    ``seed`` and ``epoch`` are the augmentation's: the loop sets both before each epoch. ``set_epoch`` (mmengine's
    ``DistSamplerSeedHook``) sets the epoch here and in the wrapped sampler, whose shuffle order follows it.
    """

    def __init__(self, sampler: dict | Sampler, dataset: Dataset, seed: int | None = None):
        if isinstance(sampler, dict):
            sampler = DATA_SAMPLERS.build(sampler, default_args=dict(dataset=dataset, seed=seed))
        self.sampler, self.seed, self.epoch = sampler, seed or 0, 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        repeats = Counter()  # an oversampling sampler may yield an index twice in an epoch: each gets its own draw
        for index in self.sampler:
            k = repeats[index]
            repeats[index] += 1
            yield index, derive_seed(self.seed, self.epoch, index, *([k] if k else []))

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)


class SeededDataset(Dataset):
    """Wraps a map-style dataset (a config or a dataset): ``dataset[(index, seed)]`` is ``dataset[index]`` loaded
    under :func:`seeded` ``(seed)``; a plain index is passed through. Every other attribute (``metainfo``,
    ``full_init``, ``get_data_info``, ...) is the wrapped dataset's."""

    def __init__(self, dataset: dict | Dataset):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        if isinstance(self.dataset, IterableDataset):
            raise TypeError(f'{type(self.dataset).__name__} is an IterableDataset: its samples have no index to '
                            'seed their augmentation by; train it with EpochBasedTrainLoop '
                            '(--cfg-options train_cfg.type=EpochBasedTrainLoop)')

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]):
        if isinstance(key, tuple):
            index, seed = key
            with seeded(seed, restore=get_worker_info() is None):
                return self.dataset[index]
        return self.dataset[key]

    def __getattr__(self, name: str):
        if name == 'dataset':  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f'SeededDataset({self.dataset!r})'


def seeded_dataloader(dataloader: dict) -> dict:
    """A dataloader config whose dataset and sampler are wrapped in :class:`SeededDataset` / :class:`SeededSampler`
    (mmengine's ``Runner.build_dataloader`` builds it as it builds the original)."""
    return {**dataloader, 'dataset': dict(type=SeededDataset, dataset=dataloader['dataset']),
            'sampler': dict(type=SeededSampler, sampler=dataloader['sampler'])}
