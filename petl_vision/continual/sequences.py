"""Task sequences (which classes or domains arrive at each stage) and the protocols that evaluate them.

Two kinds of sequence:

- **class-incremental** (:func:`class_incremental`): the classes of one classification dataset, put in a seeded
  order (``np.random.default_rng(seed).permutation(C)``, recorded in the sequence) or one you give (the PyCIL /
  L2P orders), cut into ``T`` tasks of ``C / T`` classes. Labels are remapped to their position in the order, so
  task ``t`` owns the contiguous labels ``[t k, (t + 1) k)`` of one growing classifier;
- **domain-incremental** (:func:`domain_incremental`, :func:`digits_domain_sequence`): one label space, one
  dataset per stage (the digits domains of :class:`~petl_vision.datasets.DigitsMultiTask`).

and three protocols (:class:`Protocol`), which differ in what the model is told at test time:

- ``'task'`` (task-incremental): the task id is given; a class-incremental sequence's logits are restricted to the
  task's own classes;
- ``'class'`` (class-incremental): no task id; logits over every class seen so far;
- ``'domain'`` (domain-incremental): no task id; one label space, no restriction.

:class:`TaskSubset` hands one stage's samples to any mmengine dataset pipeline (the original dataset's own
transforms), with the remapped label and ``task`` set to the stage's name.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import BaseDataset

PROTOCOLS = ('task', 'class', 'domain')


@dataclasses.dataclass(frozen=True)
class TaskSequence:
    """What arrives at each stage. ``tasks[t]``: the original labels of stage ``t`` (class-incremental) or every
    label (domain-incremental); ``names[t]``: the stage's name; ``class_order``: the recorded order of the labels
    (class-incremental), ``seed``: how it was drawn (None: given or identity)."""

    kind: str
    tasks: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    class_order: tuple[int, ...] = ()
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def num_classes(self) -> int:
        return len(self.class_order) if self.kind == 'class' else len(self.tasks[0])

    def label_map(self) -> dict[int, int]:
        """Original label -> label of the growing classifier (its position in the class order)."""
        order = self.class_order if self.kind == 'class' else self.tasks[0]
        return {c: i for i, c in enumerate(order)}

    def task_of(self, label: int) -> int:
        """The stage that introduces an original label (class-incremental)."""
        for t, classes in enumerate(self.tasks):
            if label in classes:
                return t
        raise KeyError(f'label {label} is in no task of this sequence ({self.num_classes} classes)')

    def mapped_classes(self, task: int) -> list[int]:
        """Classifier labels of stage ``task``'s classes."""
        m = self.label_map()
        return sorted(m[c] for c in self.tasks[task])

    def to_dict(self) -> dict:
        return {'kind': self.kind, 'tasks': [list(t) for t in self.tasks], 'names': list(self.names),
                'class_order': list(self.class_order), 'seed': self.seed}

    def save(self, path: str | Path) -> Path:
        """Record the sequence (class order and seed included) as json beside the run."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TaskSequence:
        d = json.loads(Path(path).read_text())
        return cls(kind=d['kind'], tasks=tuple(tuple(t) for t in d['tasks']), names=tuple(d['names']),
                   class_order=tuple(d['class_order']), seed=d['seed'])


def class_incremental(num_classes: int, num_tasks: int, seed: int | None = None,
                      class_order: Sequence[int] | None = None) -> TaskSequence:
    """``num_classes`` classes in ``num_tasks`` equal tasks, in a seeded order (``seed``), a given order
    (``class_order``) or label order (neither)."""
    if num_tasks < 1 or num_classes % num_tasks:
        raise ValueError(f'{num_classes} classes do not split into {num_tasks} equal tasks; choose num_tasks '
                         f'dividing {num_classes}')
    if class_order is not None and seed is not None:
        raise ValueError('give class_order or seed, not both (the order given would ignore the seed)')
    if class_order is not None:
        order = [int(c) for c in class_order]
        if sorted(order) != list(range(num_classes)):
            raise ValueError(f'class_order must be a permutation of 0..{num_classes - 1}; got {len(order)} labels')
    elif seed is not None:
        order = [int(c) for c in np.random.default_rng(seed).permutation(num_classes)]
    else:
        order = list(range(num_classes))
    k = num_classes // num_tasks
    tasks = tuple(tuple(order[t * k:(t + 1) * k]) for t in range(num_tasks))
    return TaskSequence('class', tasks, tuple(f'task{t}' for t in range(num_tasks)), tuple(order), seed)


def domain_incremental(names: Sequence[str], num_classes: int) -> TaskSequence:
    """One stage per domain ``names[t]``, all sharing the labels ``0..num_classes-1``."""
    if len(set(names)) != len(names) or not names:
        raise ValueError(f'domain names must be distinct and non-empty, got {list(names)}')
    every = tuple(range(num_classes))
    return TaskSequence('domain', tuple(every for _ in names), tuple(names))


def dataset_labels(dataset: BaseDataset) -> np.ndarray:
    """The ``gt_label`` of every sample of an mmengine dataset, (N,) int64 (no image is decoded)."""
    return np.array([int(dataset.get_data_info(i)['gt_label']) for i in range(len(dataset))], dtype=np.int64)


class TaskSubset(torch.utils.data.Dataset):
    """Samples ``indices`` of an mmengine ``dataset`` through its own pipeline, labels mapped by ``label_map``,
    ``task`` (packed by :class:`~petl_vision.datasets.PackInputs`) set to ``name``."""

    def __init__(self, dataset: BaseDataset, indices: Sequence[int], label_map: dict[int, int], name: str) -> None:
        self.dataset, self.indices, self.label_map, self.name = dataset, [int(i) for i in indices], label_map, name

    def __len__(self) -> int:
        return len(self.indices)

    def get_data_info(self, i: int) -> dict:
        info = copy.copy(self.dataset.get_data_info(self.indices[i]))
        info['gt_label'] = self.label_map[int(info['gt_label'])]
        info['task'] = self.name
        return info

    def __getitem__(self, i: int) -> dict:
        return self.dataset.pipeline(self.get_data_info(i))


def task_indices(labels: np.ndarray, sequence: TaskSequence, task: int, seen: bool = False) -> np.ndarray:
    """Indices of the samples of stage ``task`` (``seen``: of stages ``0..task``) in a class-incremental sequence."""
    if sequence.kind != 'class':
        raise ValueError('task_indices splits one dataset by class; a domain sequence has one dataset per stage')
    classes = [c for t in range(0 if seen else task, task + 1) for c in sequence.tasks[t]]
    return np.flatnonzero(np.isin(labels, classes))


def task_subset(dataset: BaseDataset, sequence: TaskSequence, task: int, seen: bool = False) -> TaskSubset:
    """Stage ``task`` of a class-incremental sequence over ``dataset`` (``seen``: stages ``0..task``, the test set of
    a class-incremental evaluation after stage ``task``)."""
    idx = task_indices(dataset_labels(dataset), sequence, task, seen)
    return TaskSubset(dataset, idx, sequence.label_map(), sequence.names[task])


def digits_domain_sequence(domains: Sequence[str] = ('upright', 'rotated_30', 'rotated_60', 'inverted', 'blurred'),
                           task: str = 'digit', split: str = 'train', seed: int = 0,
                           **kwargs) -> tuple[TaskSequence, list[BaseDataset]]:
    """The digits domains as a domain-incremental sequence: one :class:`DigitsMultiTask` per domain, all with
    ``task``'s labels; ``kwargs`` (``pipeline``, ``shots``) go to every dataset."""
    from petl_vision.datasets.digits_multitask import TASKS, DigitsMultiTask

    sequence = domain_incremental(domains, len(TASKS[task]))
    sets = [DigitsMultiTask(task=task, domain=d, split=split, seed=seed, **kwargs) for d in domains]
    return sequence, sets


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a sequence is evaluated: ``'task'`` (task id given), ``'class'`` or ``'domain'`` (not given)."""

    name: str

    def __post_init__(self):
        if self.name not in PROTOCOLS:
            raise ValueError(f'protocol must be one of {PROTOCOLS}, got {self.name!r}')

    @property
    def task_given(self) -> bool:
        return self.name == 'task'

    def mask_logits(self, logits: torch.Tensor, sequence: TaskSequence, stage: int,
                    task_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``logits`` (B, C) of the growing classifier with the classes this protocol rules out at ``stage`` set to
        -inf: under ``'task'`` all but each sample's task's classes (``task_ids`` (B,) needed), under ``'class'`` the
        classes of later stages; ``'domain'`` rules out none."""
        if self.name == 'domain' or sequence.kind == 'domain':
            return logits
        allowed = torch.zeros_like(logits, dtype=torch.bool)
        if self.name == 'class':
            allowed[:, [c for t in range(stage + 1) for c in sequence.mapped_classes(t)]] = True
        else:
            if task_ids is None:
                raise ValueError("the 'task' protocol gives the task id: pass task_ids (B,) to mask_logits")
            if int(task_ids.max()) > stage:
                raise ValueError(f'task ids up to {int(task_ids.max())} at stage {stage}: a task not yet learned')
            for t in range(stage + 1):
                rows = (task_ids == t).nonzero().flatten()
                allowed[rows[:, None], torch.tensor(sequence.mapped_classes(t))] = True
        return logits.masked_fill(~allowed, float('-inf'))
