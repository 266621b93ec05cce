"""The baselines of the continual harness that need no router: prototypes of the frozen backbone's features.

- :class:`SimpleCIL` (Zhou et al., "Revisiting Class-Incremental Learning with Pre-Trained Models:
  Generalizability and Adaptivity are All You Need", IJCV 2024, arXiv 2303.07338): no training; the classifier of
  class ``c`` is the mean ``mu_c`` of the frozen backbone's pooled features of ``c``'s training images, a sample's
  logit is the cosine ``cos(f, mu_c)``. Classes are added as their task arrives; under a domain sequence a class's
  mean gathers its images of every domain seen.
- :class:`TaskPrototypes` (module selection by similarity, as in the nearest-prototype selection of adapter
  libraries): task ``t``'s prototype is the mean frozen feature of its training set; a test sample goes to the
  task whose prototype has the largest cosine with its feature, and that task's adapter alone answers it.

Both keep sums and counts, so the means are exact whatever the batching, and are saved with the run.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


class SimpleCIL:
    """Class means of frozen features, ``num_classes`` rows (C, D); cosine logits, unseen classes ``-inf``."""

    def __init__(self, num_classes: int, dim: int) -> None:
        self.sums = torch.zeros(num_classes, dim, dtype=torch.float64)
        self.counts = torch.zeros(num_classes, dtype=torch.float64)

    def add(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Accumulate ``features`` (B, D) of classes ``labels`` (B,)."""
        f = features.detach().double().cpu()
        self.sums.index_add_(0, labels.cpu(), f)
        self.counts.index_add_(0, labels.cpu(), torch.ones(len(labels), dtype=torch.float64))

    @property
    def means(self) -> torch.Tensor:
        return self.sums / self.counts.clamp(min=1)[:, None]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) -> cosine similarities (B, C); classes with no image yet are ``-inf``."""
        means = F.normalize(self.means, dim=1).to(features.device, features.dtype)
        cos = F.normalize(features, dim=1) @ means.t()
        return cos.masked_fill((self.counts == 0).to(features.device)[None], float('-inf'))

    def state(self) -> dict[str, torch.Tensor]:
        return {'sums': self.sums, 'counts': self.counts}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.sums, self.counts = state['sums'].clone(), state['counts'].clone()


class TaskPrototypes:
    """One mean frozen feature per task; :meth:`nearest` gives each sample's task by cosine."""

    def __init__(self) -> None:
        self.sums: list[torch.Tensor] = []
        self.counts: list[int] = []

    def start_task(self) -> None:
        self.sums.append(None)
        self.counts.append(0)

    def add(self, features: torch.Tensor) -> None:
        """Accumulate ``features`` (B, D) into the latest task's prototype."""
        if not self.sums:
            raise RuntimeError('start_task() before adding a task\'s features')
        f = features.detach().double().sum(dim=0).cpu()
        self.sums[-1] = f if self.sums[-1] is None else self.sums[-1] + f
        self.counts[-1] += len(features)

    @property
    def prototypes(self) -> torch.Tensor:
        """(T, D)."""
        if not self.sums or any(c == 0 for c in self.counts):
            raise RuntimeError('a task has no features: add its training features before asking for prototypes')
        return torch.stack([s / c for s, c in zip(self.sums, self.counts)])

    def nearest(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) -> the task (B,) whose prototype has the largest cosine with each feature."""
        p = F.normalize(self.prototypes, dim=1).to(features.device, features.dtype)
        return (F.normalize(features, dim=1) @ p.t()).argmax(dim=1)

    def state(self) -> dict[str, torch.Tensor]:
        return {'prototypes_sums': torch.stack(self.sums), 'prototypes_counts': torch.tensor(self.counts)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.sums = list(state['prototypes_sums'].clone())
        self.counts = [int(c) for c in state['prototypes_counts']]
