"""Episodic few-shot evaluation: adapt on each support set from the same start, score the queries.

The protocol of TSA / URL / ProLAD: per domain, a fixed number of episodes (600 in Meta-Dataset
papers); per episode a fresh model is adapted on the support set and predicts the queries; the
domain's score is the mean query accuracy with a 95% confidence interval
``1.96 * std / sqrt(episodes)`` (population std, as URL's ``test_extractor_tsa.py``).
"""
import copy
import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from torch import nn

from petl_vision.datasets.episodes import Episode, EpisodeSampler
from petl_vision.fewshot.prototypes import cosine_logits, prototypes

AdaptFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``adapt_and_predict(support_x (S, ...), support_y (S,) in [0, N), query_x (Q, ...), n_way) -> logits (Q, N)``."""

Fetch = Callable[[np.ndarray], torch.Tensor]
"""Dataset indices (B,) -> model inputs (B, ...), e.g. images (B, C, H, W)."""


@dataclass(frozen=True)
class FewShotDomain:
    """One evaluation domain: its episode sampler and how to load the items an episode names."""

    name: str
    sampler: EpisodeSampler
    fetch: Fetch


def fetch_from_dataset(dataset, key: str = 'inputs',
                       preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Fetch:
    """A :data:`Fetch` stacking ``dataset[i][key]`` (B, ...), then applying ``preprocess`` to the batch.

    mmengine pipelines pack unnormalised ``uint8`` images as ``inputs``: pass e.g.
    ``preprocess=lambda x: (x.float() - mean) / std`` with ``mean``, ``std`` of shape (C, 1, 1).
    """
    def fetch(idx: np.ndarray) -> torch.Tensor:
        batch = torch.stack([torch.as_tensor(dataset[int(i)][key]) for i in idx])  # (B, ...)
        return batch if preprocess is None else preprocess(batch)

    return fetch


def confidence_interval95(accuracies: Sequence[float] | np.ndarray) -> float:
    """``1.96 * std / sqrt(n)`` of per-episode accuracies, population std (ddof 0)."""
    acc = np.asarray(accuracies, dtype=np.float64)
    return float(1.96 * acc.std() / math.sqrt(len(acc)))


@dataclass(frozen=True)
class DomainResult:
    """Per-episode query accuracies (fractions in [0, 1]) of one domain."""

    name: str
    accuracies: np.ndarray  # (E,)

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def ci95(self) -> float:
        return confidence_interval95(self.accuracies)


@dataclass(frozen=True)
class FewShotResults:
    """Results of every evaluated domain, in evaluation order."""

    domains: dict[str, DomainResult]

    def table(self) -> dict[str, dict[str, float]]:
        """``{domain: {'episodes', 'accuracy', 'ci95'}}`` with accuracy and interval in percent."""
        return {name: {'episodes': len(r.accuracies), 'accuracy': 100 * r.mean, 'ci95': 100 * r.ci95}
                for name, r in self.domains.items()}

    @property
    def average(self) -> float:
        """Mean over domains of the domain accuracies, in percent (the papers' 'Avg' column)."""
        return 100 * float(np.mean([r.mean for r in self.domains.values()]))

    def to_csv(self, path: str | Path) -> None:
        """Write one row per domain: ``domain,episodes,accuracy,ci95`` (percent, 2 decimals)."""
        with open(path, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['domain', 'episodes', 'accuracy', 'ci95'])
            for name, row in self.table().items():
                writer.writerow([name, row['episodes'], f"{row['accuracy']:.2f}", f"{row['ci95']:.2f}"])


class _ModelSnapshot:
    """Everything per-episode adaptation may change on a module tree and that we can restore.

    Restores the state dict (parameters and buffers, e.g. BatchNorm running statistics), each
    parameter's ``requires_grad`` and each module's train/eval mode. Attributes that are neither
    (plain tensors, Python flags) are not tracked: keep episode state in parameters or buffers.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.state = copy.deepcopy(model.state_dict())
        self.requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
        self.training = {n: m.training for n, m in model.named_modules()}

    def restore(self) -> None:
        keys = set(self.model.state_dict())
        if keys != set(self.state):
            added, removed = sorted(keys - set(self.state)), sorted(set(self.state) - keys)
            raise RuntimeError(f'the adapt function changed the model structure (added {added[:5]}, removed '
                               f'{removed[:5]}); attach tuners before building the evaluator and reset them '
                               f'inside the adapt function instead')
        self.model.load_state_dict(self.state)
        for n, p in self.model.named_parameters():
            p.requires_grad_(self.requires_grad[n])
        for n, m in self.model.named_modules():
            m.training = self.training[n]


class FewShotEvaluator:
    """Runs ``adapt_fn`` on ``num_episodes`` episodes of each domain, each from the same model state.

    Args:
        adapt_fn: :data:`AdaptFn`; it closes over ``model`` and may train it freely.
        model: the module ``adapt_fn`` adapts; snapshotted when :meth:`evaluate` starts and restored
            after every episode (and at the end), so no episode sees another's adaptation.
        num_episodes: episodes per domain (600 in the Meta-Dataset papers).
        seed: torch's RNG is seeded with ``(seed, episode)`` inside each episode (random adapter inits
            are reproducible) and left as it was outside.
        device: where support/query inputs and labels are moved.
        progress: show a ``rich`` progress bar over episodes.
    """

    def __init__(self, adapt_fn: AdaptFn, model: nn.Module, num_episodes: int = 600, seed: int = 0,
                 device: str | torch.device = 'cpu', progress: bool = True):
        if num_episodes < 1:
            raise ValueError(f'num_episodes must be >= 1, got {num_episodes}')
        self.adapt_fn = adapt_fn
        self.model = model
        self.num_episodes = num_episodes
        self.seed = seed
        self.device = torch.device(device)
        self.progress = progress

    def evaluate(self, domains: Sequence[FewShotDomain]) -> FewShotResults:
        snapshot = _ModelSnapshot(self.model)
        results = {}
        with Progress(disable=not self.progress) as bar:
            for domain in domains:
                task = bar.add_task(domain.name, total=self.num_episodes)
                accuracies = np.empty(self.num_episodes)
                for i in range(self.num_episodes):
                    try:
                        accuracies[i] = self._run_episode(domain, domain.sampler.episode(i), i)
                    finally:
                        snapshot.restore()
                    bar.advance(task)
                results[domain.name] = DomainResult(domain.name, accuracies)
        return FewShotResults(results)

    def _run_episode(self, domain: FewShotDomain, episode: Episode, index: int) -> float:
        """Query accuracy of one episode."""
        support_x = domain.fetch(episode.support_idx).to(self.device)
        query_x = domain.fetch(episode.query_idx).to(self.device)
        support_y = torch.as_tensor(episode.support_labels, device=self.device)
        query_y = torch.as_tensor(episode.query_labels, device=self.device)
        with torch.random.fork_rng(devices=self._cuda_devices()):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))
            logits = self.adapt_fn(support_x, support_y, query_x, episode.n_way)
        if logits.shape != (len(query_y), episode.n_way):
            raise ValueError(f'adapt_fn returned logits of shape {tuple(logits.shape)} for domain {domain.name!r}; '
                             f'expected (num_query, n_way) = ({len(query_y)}, {episode.n_way})')
        return (logits.argmax(dim=1) == query_y).float().mean().item()

    def _cuda_devices(self) -> list[int]:
        """The CUDA device whose RNG an episode forks (none on CPU)."""
        if self.device.type != 'cuda':
            return []
        return [torch.cuda.current_device() if self.device.index is None else self.device.index]


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Features (B, D) of inputs ``x`` (B, ...) in eval mode, ``batch_size`` inputs at a time."""
    model.eval()
    return torch.cat([model(chunk) for chunk in x.split(batch_size)])


def frozen_prototype_baseline(model: nn.Module, batch_size: int = 256) -> AdaptFn:
    """No adaptation: cosine nearest-centroid (logits ``10 * cos``) on frozen features.

    ``model`` maps inputs (B, ...) to features (B, D), e.g. a timm model built with ``num_classes=0``.
    """
    def adapt_and_predict(support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                          n_way: int) -> torch.Tensor:
        protos = prototypes(embed(model, support_x, batch_size), support_y, n_way)
        return cosine_logits(embed(model, query_x, batch_size), protos)

    return adapt_and_predict
