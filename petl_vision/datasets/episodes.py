"""Few-shot episodes sampled from any labelled dataset.

Two protocols:

- :class:`FixedProtocol`: classic N-way K-shot with Q queries per class (miniImageNet style).
- :class:`MetaDatasetProtocol`: Meta-Dataset's variable-way variable-shot protocol
  (Triantafillou et al., ICLR 2020, https://arxiv.org/abs/1903.03096; the sampling of
  ``meta_dataset/data/sampling.py`` used by TSA / URL / ProLAD) without the ImageNet and Omniglot
  class hierarchies: classes are drawn uniformly.

The sampler only needs integer labels, e.g. ``dataset.get_gt_labels()`` of an mmengine dataset or
``[d['gt_label'] for d in data_list]``. Episode ``i`` is drawn from a generator seeded with
``(seed, i)``, so it does not depend on which episodes were drawn before it.
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Episode:
    """One few-shot task; indices point into the dataset the labels came from.

    ``classes[k]`` is the dataset label that is relabelled ``k`` in ``support_labels`` and
    ``query_labels``. Support and query are grouped by episode class (class 0 first). Compare
    episodes field by field (``np.array_equal``); ``==`` is identity.
    """

    support_idx: np.ndarray  # (S,) int64
    support_labels: np.ndarray  # (S,) int64 in [0, N)
    query_idx: np.ndarray  # (Q,) int64
    query_labels: np.ndarray  # (Q,) int64 in [0, N)
    classes: np.ndarray  # (N,) int64 dataset labels

    @property
    def n_way(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class FixedProtocol:
    """N-way K-shot episodes with ``n_query`` query examples per class."""

    n_way: int = 5
    k_shot: int = 1
    n_query: int = 15

    def __post_init__(self):
        if self.n_way < 2 or self.k_shot < 1 or self.n_query < 1:
            raise ValueError(f'FixedProtocol needs n_way >= 2, k_shot >= 1 and n_query >= 1, got {self}')


@dataclass(frozen=True)
class MetaDatasetProtocol:
    """Meta-Dataset's variable-way variable-shot episodes (the defaults are the paper's).

    - way: uniform integer in ``[min_ways, min(max_ways, num_classes)]``;
    - query per class: ``min(max_num_query, min over episode classes of floor(class_size / 2))``;
    - support size: ``min(max_support_set_size, sum_c ceil(beta * min(max_support_size_contrib_per_class,
      class_size_c - query)))`` with ``beta ~ U(0, 1]``;
    - shots of class c: ``min(class_size_c - query, 1 + floor(p_c * (support_size - way)))`` with
      ``p_c`` proportional to ``class_size_c * exp(u_c)``, ``u_c ~ U(min_log_weight, max_log_weight)``.
    """

    min_ways: int = 5
    max_ways: int = 50
    max_num_query: int = 10
    max_support_set_size: int = 500
    max_support_size_contrib_per_class: int = 100
    min_log_weight: float = math.log(0.5)
    max_log_weight: float = math.log(2.0)

    def __post_init__(self):
        if not 2 <= self.min_ways <= self.max_ways:
            raise ValueError(f'MetaDatasetProtocol needs 2 <= min_ways <= max_ways, got {self}')
        if self.max_support_set_size < self.max_ways:
            raise ValueError(f'max_support_set_size ({self.max_support_set_size}) must be >= max_ways '
                             f'({self.max_ways}) so that every class gets at least one support example')
        if self.min_log_weight > self.max_log_weight:
            raise ValueError(f'min_log_weight must be <= max_log_weight, got {self}')


EpisodeProtocol = FixedProtocol | MetaDatasetProtocol


class EpisodeSampler:
    """Reproducible few-shot episodes over a labelled dataset.

    Args:
        labels: (M,) integer label of every dataset item.
        protocol: :class:`FixedProtocol` or :class:`MetaDatasetProtocol`.
        seed: episodes are a function of ``(seed, episode index)`` only.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, protocol: EpisodeProtocol = FixedProtocol(), seed: int = 0):
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f'labels must be a 1-D sequence of integers, got shape {labels.shape} and dtype '
                             f'{labels.dtype}; pass e.g. dataset.get_gt_labels()')
        self.protocol = protocol
        self.seed = seed
        classes, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind='stable')
        bounds = np.cumsum(np.bincount(inverse))[:-1]
        self._items = dict(zip(classes.tolist(), np.split(order.astype(np.int64), bounds)))
        min_size = 2 if isinstance(protocol, MetaDatasetProtocol) else protocol.k_shot + protocol.n_query
        min_ways = protocol.min_ways if isinstance(protocol, MetaDatasetProtocol) else protocol.n_way
        self.eligible_classes = np.array([c for c, idx in self._items.items() if len(idx) >= min_size], np.int64)
        if len(self.eligible_classes) < min_ways:
            raise ValueError(f'{protocol} needs {min_ways} classes with at least {min_size} examples each, but '
                             f'only {len(self.eligible_classes)} of {len(classes)} classes have that many; '
                             f'lower the way/shot/query or use a larger split')

    def episode(self, index: int) -> Episode:
        """Episode number ``index`` (any non-negative integer), identical on every call."""
        if index < 0:
            raise ValueError(f'episode index must be >= 0, got {index}')
        rng = np.random.default_rng([self.seed, index])
        if isinstance(self.protocol, FixedProtocol):
            classes = rng.choice(self.eligible_classes, self.protocol.n_way, replace=False)
            shots = np.full(len(classes), self.protocol.k_shot)
            n_query = self.protocol.n_query
        else:
            classes, shots, n_query = self._meta_dataset_composition(rng)
        return self._draw(rng, classes, shots, n_query)

    def _meta_dataset_composition(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """Classes (N,), support shots per class (N,) and query per class, as Meta-Dataset samples them."""
        p = self.protocol
        n_way = int(rng.integers(p.min_ways, min(p.max_ways, len(self.eligible_classes)) + 1))
        classes = rng.choice(self.eligible_classes, n_way, replace=False)
        sizes = np.array([len(self._items[c]) for c in classes.tolist()])
        n_query = int(min(p.max_num_query, (sizes // 2).min()))
        remaining = sizes - n_query
        beta = 1.0 - rng.random()  # U(0, 1]
        contributions = np.minimum(p.max_support_size_contrib_per_class, remaining)
        support_size = int(min(np.ceil(beta * contributions).sum(), p.max_support_set_size))
        weights = sizes * np.exp(rng.uniform(p.min_log_weight, p.max_log_weight, size=n_way))
        shots = np.floor(weights / weights.sum() * (support_size - n_way)).astype(np.int64) + 1
        return classes, np.minimum(shots, remaining), n_query

    def _draw(self, rng: np.random.Generator, classes: np.ndarray, shots: np.ndarray, n_query: int) -> Episode:
        """Disjoint support and query items: a permutation of each class, queries first."""
        support, query = [], []
        for c, k in zip(classes.tolist(), shots.tolist()):
            items = rng.permutation(self._items[c])
            query.append(items[:n_query])
            support.append(items[n_query:n_query + k])
        way = np.arange(len(classes))
        return Episode(support_idx=np.concatenate(support), support_labels=np.repeat(way, shots),
                       query_idx=np.concatenate(query), query_labels=np.repeat(way, n_query),
                       classes=classes.astype(np.int64))
