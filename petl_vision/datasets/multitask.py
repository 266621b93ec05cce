"""Several classification datasets as one, each item tagged with its task, and a sampler that mixes the tasks.

:class:`MultiTaskDataset` concatenates ``{task: dataset}`` in the given order (task ``t`` owns the index range
``task_ranges[t]``) and adds ``'task': t`` to every sample its datasets' pipelines produce, so with
``default_collate`` a batch is ``{'inputs': uint8 (B, 3, H, W), 'data_samples': int64 (B,), 'task': list of B
names}``: labels live in each task's own label space, and the model routes sample ``i`` to ``task[i]``'s adapter
and head.

:class:`TaskBalancedSampler` draws the tasks of an epoch with probabilities ``p_t`` (:func:`task_probabilities`)
and the items of each task without replacement, so a batch mixes tasks; like mmengine's ``DefaultSampler`` it is
seeded by ``seed + epoch`` (:meth:`~TaskBalancedSampler.set_epoch`) and hands every rank a disjoint share of the
same global order.
"""
from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Iterator, Mapping

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Dataset, Sampler

from petl_vision.registry import DATA_SAMPLERS, DATASETS

RESERVED_TASKS = frozenset({'__base__'})  # ``tuner_context`` reads it as "the frozen model, no adapter"
MODES = ('balanced', 'temperature')


@DATASETS.register_module()
class MultiTaskDataset(Dataset):
    """The concatenation of one dataset per task; every sample gets a ``'task'`` key.

    Args:
        datasets: ``{task name: dataset config or dataset}``; the names are the tasks the model sees (they replace
            a ``task`` the inner samples may carry, e.g. ``DigitsMultiTask``'s), in this order.
        samples_per_task: keep a seeded random subset of this many items of every task (sample-efficiency studies:
            VTAB-1k at 100 / 200 / 500 / 800 per task); None keeps them all.
        subset_seed: seed of those subsets (each task's subset depends on the seed and the task's name only, so
            adding a task leaves the others' subsets as they were).

    Attributes:
        tasks: the task names, in order.
        task_ranges: ``{task: range of its indices}`` in this dataset.
        num_classes: ``{task: len(metainfo['classes'])}`` of each inner dataset that declares its classes.
    """

    def __init__(self, datasets: Mapping[str, dict | Dataset], samples_per_task: int | None = None,
                 subset_seed: int = 0) -> None:
        if not isinstance(datasets, Mapping) or not datasets:
            raise ValueError('MultiTaskDataset needs datasets={task name: dataset config, ...} with at least one '
                             f'task; got {datasets!r}')
        for name in datasets:
            if not isinstance(name, str) or not name or name in RESERVED_TASKS:
                raise ValueError(f'task names must be non-empty strings other than {sorted(RESERVED_TASKS)} (it '
                                 f'means "no adapter" to tuner_context); got {name!r}')
        self.datasets = {name: DATASETS.build(d) if isinstance(d, dict) else d for name, d in datasets.items()}
        self.tasks = tuple(self.datasets)
        self._subsets = _subsets(self.datasets, samples_per_task, subset_seed)
        sizes = [len(self._subsets[t]) if t in self._subsets else len(d) for t, d in self.datasets.items()]
        empty = [t for t, n in zip(self.tasks, sizes) if n == 0]
        if empty:
            raise ValueError(f'tasks {empty} have no items: check their split / shots / data_root')
        self._ends = [sum(sizes[:i + 1]) for i in range(len(sizes))]
        self.task_ranges = {t: range(end - n, end) for t, n, end in zip(self.tasks, sizes, self._ends)}
        self.num_classes = {t: len(d.metainfo['classes']) for t, d in self.datasets.items()
                            if 'classes' in (getattr(d, 'metainfo', None) or {})}

    @property
    def metainfo(self) -> dict:
        """``{'tasks': names, 'task_classes': {task: its metainfo classes}}`` (no ``classes``: they differ)."""
        return {'tasks': self.tasks, 'task_classes': {t: tuple(getattr(d, 'metainfo', {}).get('classes', ()))
                                                      for t, d in self.datasets.items()}}

    def full_init(self) -> None:
        """Fully initialise every inner dataset that was built with ``lazy_init=True``."""
        for d in self.datasets.values():
            if hasattr(d, 'full_init'):
                d.full_init()

    def __len__(self) -> int:
        return self._ends[-1]

    def locate(self, idx: int) -> tuple[str, int]:
        """The task of item ``idx`` and its position among that task's items (with ``samples_per_task``: in its
        subset; :meth:`source_index` gives the index in the task's dataset)."""
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} is out of range for a MultiTaskDataset of {len(self)} items')
        k = bisect.bisect_right(self._ends, idx)
        return self.tasks[k], idx - self.task_ranges[self.tasks[k]].start

    def source_index(self, idx: int) -> tuple[str, int]:
        """The task of item ``idx`` and its index in that task's dataset."""
        task, local = self.locate(idx)
        return task, self._subsets[task][local] if task in self._subsets else local

    def __getitem__(self, idx: int) -> dict:
        task, local = self.source_index(idx)
        sample = self.datasets[task][local]
        if not isinstance(sample, Mapping):
            raise TypeError(f"task {task!r}'s dataset returned a {type(sample).__name__}, not a dict; end its "
                            "pipeline with PackInputs")
        return {**sample, 'task': task}


def _subsets(datasets: Mapping[str, Dataset], size: int | None, seed: int) -> dict[str, list[int]]:
    """``{task: sorted indices of its seeded random subset of ``size`` items}``; empty when ``size`` is None."""
    if size is None:
        return {}
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f'samples_per_task must be a positive int (or None for every item), got {size!r}')
    short = {t: len(d) for t, d in datasets.items() if len(d) < size}
    if short:
        raise ValueError(f'samples_per_task={size} is more than tasks {short} hold (their sizes); lower it or '
                         'leave those tasks out')
    subsets = {}
    for task, dataset in datasets.items():
        g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(task.encode()))
        subsets[task] = sorted(torch.randperm(len(dataset), generator=g)[:size].tolist())
    return subsets


def task_probabilities(sizes: Mapping[str, int], mode: str = 'balanced',
                       temperature: float | None = None) -> dict[str, float]:
    """Sampling probability of each task: ``'balanced'``: ``1 / T`` each; ``'temperature'``:
    ``p_t ~ n_t ** (1 / temperature)`` (1: proportional to the sizes ``n_t``; ``float('inf')``: balanced)."""
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if mode == 'balanced':
        if temperature is not None:
            raise ValueError(f"temperature={temperature} is only read with mode='temperature'; drop it or set "
                             "mode='temperature'")
        return {t: 1 / len(sizes) for t in sizes}
    if temperature is None or not temperature > 0:
        raise ValueError(f"mode='temperature' needs temperature > 0 (1: proportional to the task sizes, larger: "
                         f"flatter, float('inf'): balanced); got {temperature!r}")
    logs = {t: math.log(n) / temperature for t, n in sizes.items()}  # n ** (1 / T) in log space: no overflow
    top = max(logs.values())
    weights = {t: math.exp(v - top) for t, v in logs.items()}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


@DATA_SAMPLERS.register_module()
class TaskBalancedSampler(Sampler[int]):
    """Mixed-task order over a :class:`MultiTaskDataset`: task ``t`` fills a share ``p_t`` of every epoch.

    An epoch of ``epoch_length`` draws (padded up to a multiple of the world size) gives task ``t``
    ``floor(p_t * L)`` or ``ceil(p_t * L)`` of its positions (systematic sampling with a random offset: exactly
    ``p_t * L`` on average), in a random order; the task's items fill them from shuffled passes over the task
    (without replacement within a pass, so an oversampled small task repeats each item evenly). Every rank takes
    positions ``rank, rank + world_size, ...`` of the same order, so ranks never share a position.

    Args:
        dataset: a :class:`MultiTaskDataset` (anything with ``task_ranges``: ``{task: range}``).
        mode: ``'balanced'`` or ``'temperature'`` (see :func:`task_probabilities`).
        temperature: ``T`` of ``mode='temperature'``.
        epoch_length: draws per epoch over all ranks (default: ``len(dataset)``, the sum of the task sizes).
        seed: the order is a function of ``seed + epoch``; ``None`` draws one shared by all ranks (as mmengine).
    """

    def __init__(self, dataset: Dataset, mode: str = 'balanced', temperature: float | None = None,
                 epoch_length: int | None = None, seed: int | None = None) -> None:
        ranges = getattr(dataset, 'task_ranges', None)
        if not isinstance(ranges, Mapping):
            raise TypeError(f'TaskBalancedSampler samples a MultiTaskDataset (it needs task_ranges); got a '
                            f"{type(dataset).__name__}: wrap it, dataset=dict(type='MultiTaskDataset', "
                            'datasets={task: dataset config})')
        self.dataset, self.task_ranges = dataset, dict(ranges)
        self.probabilities = task_probabilities({t: len(r) for t, r in ranges.items()}, mode, temperature)
        total = sum(len(r) for r in ranges.values())
        self.epoch_length = total if epoch_length is None else epoch_length
        if isinstance(self.epoch_length, bool) or not isinstance(self.epoch_length, int) or self.epoch_length < 1:
            raise ValueError(f'epoch_length must be a positive int (draws per epoch), got {epoch_length!r}')
        self.rank, self.world_size = get_dist_info()
        self.num_samples = math.ceil(self.epoch_length / self.world_size)
        self.total_size = self.num_samples * self.world_size
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of ``epoch`` next (mmengine's loops call this at the start of each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Items this rank yields per epoch."""
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_order()[self.rank::self.world_size].tolist())

    def global_order(self) -> torch.Tensor:
        """The epoch's ``total_size`` dataset indices over all ranks, int64."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        counts = self._task_counts(g)
        slots = torch.randperm(self.total_size, generator=g)  # the positions of task 0 first, then of task 1 ...
        order = torch.empty(self.total_size, dtype=torch.int64)
        start = 0
        for items, n in zip(self.task_ranges.values(), counts):
            order[slots[start:start + n]] = _draw_items(items, n, g)
            start += n
        return order

    def _task_counts(self, g: torch.Generator) -> list[int]:
        """Positions per task: systematic sampling, ``floor(c_t * L + u) - floor(c_{t-1} * L + u)`` for the
        cumulative probabilities ``c`` and one offset ``u ~ U[0, 1)``."""
        u = float(torch.rand((), generator=g))
        cumulative = torch.tensor(list(self.probabilities.values()), dtype=torch.float64).cumsum(0)
        cumulative[-1] = 1.0  # rounding must not lose the last position
        edges = torch.floor(cumulative * self.total_size + u).long().tolist()
        return [b - a for a, b in zip([0, *edges[:-1]], edges)]


def _draw_items(items: range, n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` indices of ``items`` from consecutive shuffled passes (each pass a permutation of all of them)."""
    passes = [torch.randperm(len(items), generator=g) for _ in range(math.ceil(n / len(items)))]
    picked = torch.cat(passes)[:n] if passes else torch.empty(0, dtype=torch.int64)
    return picked + items.start
