"""A domain-incremental run on the digits domains: one LoRA adapter per domain, trained in isolation on the
frozen ``vit_digits_demo``, evaluated after each stage on every domain seen so far under four compositions:

- ``oracle``: the domain id is given, each test sample goes to its own domain's adapter (the upper bound);
- ``l2r``: a router trained after each stage on the replay memory (``memory`` images per domain) weighs the
  adapters per sample (:class:`~petl_vision.continual.L2R`);
- ``arrow``: zero-shot per-token routing by the adapters' SVD prototypes (:class:`~petl_vision.continual.Arrow`);
- ``uniform``: every seen adapter at weight ``1/N`` (output averaging).

The classifier is part of each adapter: the backbone's head is zeroed and frozen, and every adapter holds a
LoRA on it (rank ``min(10, head_rank)``) besides its LoRA on the attention ``qkv``, so Arrow can route the head
as any other LoRA layer and an unrouted model predicts nothing (all logits 0).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

import petl_vision as pv
from petl_vision.continual.arrow import Arrow
from petl_vision.continual.l2r import L2R, memory_samples, train_adapter
from petl_vision.continual.memory import ReplayMemory
from petl_vision.continual.metrics import summary

METHODS = ('oracle', 'l2r', 'arrow', 'uniform')
DEFAULT_DOMAINS = ('upright', 'rotated_90', 'inverted', 'noisy')


def domain_tensors(domain: str, split: str, seed: int = 0, limit: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits images of ``domain`` (N, 3, 32, 32), normalised as the demo backbone was (mean = std = 0.5), and
    their digit labels (N,); ``limit``: the first ``limit`` samples only."""
    from petl_vision.datasets.digits_multitask import DigitsMultiTask

    data = DigitsMultiTask(task='digit', domain=domain, split=split, seed=seed)
    n = len(data) if limit is None else min(limit, len(data))
    infos = [data.get_data_info(i) for i in range(n)]
    x = torch.stack([torch.as_tensor(i['img']) for i in infos]).float()
    return (x / 255 - 0.5) / 0.5, torch.tensor([int(i['gt_label']) for i in infos])


def demo_model(seed: int = 0) -> nn.Module:
    """The shipped digits ViT with a zeroed, frozen 10-way head (each adapter brings its own head LoRA)."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model('vit_digits_demo', pretrained=True, num_classes=10)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    return model.eval()


def domain_plan(rank: int, head_rank: int = 10) -> list[dict]:
    return [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': rank},
            {'type': 'LoRA', 'targets': 'head', 'rank': min(10, head_rank)}]


@torch.no_grad()
def _accuracy(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits_fn(x).argmax(dim=1) == y).float().mean())


def evaluate_stage(model: nn.Module, l2r: L2R, tests: Sequence[tuple[torch.Tensor, torch.Tensor]],
                   top_k: int, temperature: float) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Accuracy on each seen domain under each method, and the routing accuracy of L2R and Arrow (how often the
    top adapter is the sample's own domain; Arrow: over every token of every routed layer)."""
    names = list(l2r.adapters)
    uniform = torch.full((1, len(names)), 1 / len(names))
    arrow = Arrow(model, names, top_k=top_k, temperature=temperature, record=True)
    acc = {m: [] for m in METHODS}
    l2r_hits, arrow_hits = [], []
    for j, (x, y) in enumerate(tests):
        def oracle(v, j=j):
            with pv.tuner_context(adapter=names[j]):
                return model(v)

        def mixed(v):
            with pv.tuner_context(adapter_weights=uniform.expand(len(v), -1), adapters=names):
                return model(v)

        acc['oracle'].append(_accuracy(oracle, x, y))
        acc['l2r'].append(_accuracy(l2r, x, y))
        acc['arrow'].append(_accuracy(arrow, x, y))
        acc['uniform'].append(_accuracy(mixed, x, y))
        own = torch.full((len(x),), j)
        l2r_hits.append(l2r.routing_accuracy(x, own) * len(x))
        arrow_hits.append(arrow.routing_accuracy(own) * len(x))
    total = sum(len(x) for x, _ in tests)
    return acc, {'l2r': sum(l2r_hits) / total, 'arrow': sum(arrow_hits) / total}


def run_domain_sequence(domains: Sequence[str] = DEFAULT_DOMAINS, rank: int = 4, epochs: int = 10, lr: float = 5e-3,
                        memory: int = 20, router_epochs: int = 100, top_k: int = 4, temperature: float = 1.0,
                        seed: int = 0, limit: int | None = None,
                        progress: Callable[[str], None] = print) -> dict:
    """Train and evaluate the whole sequence; returns the accuracy matrix per method (``R[i][j]``: domain ``j``
    after stage ``i``, NaN above the diagonal), its metrics, the routing accuracy per stage and timings."""
    if len(set(domains)) != len(domains) or len(domains) < 2:
        raise ValueError(f'a domain sequence needs at least 2 distinct domains, got {list(domains)}')
    if memory < 1:
        raise ValueError(f'the replay memory needs at least 1 image per domain for the router, got {memory}')
    start = time.perf_counter()
    model = demo_model(seed)
    train = [domain_tensors(d, 'train', seed, limit) for d in domains]
    tests = [domain_tensors(d, 'test', seed, limit) for d in domains]
    l2r, replay = L2R(model, hidden=64), ReplayMemory(per_task=memory, seed=seed)
    T = len(domains)
    R = {m: np.full((T, T), np.nan) for m in METHODS}
    routing, losses, stage_seconds = {'l2r': [], 'arrow': []}, [], []
    for t, (domain, (x, y)) in enumerate(zip(domains, train)):
        t0 = time.perf_counter()
        l2r.add_task(domain, domain_plan(rank))
        losses.append(train_adapter(model, domain, x, y, epochs=epochs, lr=lr, seed=seed + t)[-1])
        replay.add_task(t, range(len(x)))
        x_mem, t_mem = memory_samples(replay, [list(zip(xs, ys)) for xs, ys in train[:t + 1]])
        l2r.fit_router(x_mem, t_mem, epochs=router_epochs, seed=seed)
        acc, routed = evaluate_stage(model, l2r, tests[:t + 1], top_k, temperature)
        for m in METHODS:
            R[m][t, :t + 1] = acc[m]
        for m in routing:
            routing[m].append(routed[m])
        stage_seconds.append(time.perf_counter() - t0)
        progress(f'stage {t + 1}/{T} {domain}: train loss {losses[-1]:.3f}, ' +
                 ', '.join(f'{m} {np.nanmean(R[m][t]):.3f}' for m in METHODS) + f' ({stage_seconds[-1]:.1f} s)')
    sizes = [len(y) for _, y in tests]
    return {'domains': list(domains), 'test_sizes': sizes, 'memory_per_domain': memory,
            'matrices': {m: R[m].tolist() for m in METHODS},
            'metrics': {m: summary(R[m], sizes) for m in METHODS},
            'routing_accuracy': routing, 'final_train_loss': losses,
            'seconds': {'stages': stage_seconds, 'total': time.perf_counter() - start}}


def plot_matrices(result: dict, path: str) -> str:
    """One heat map per method, side by side (rows: after stage i; columns: domain j)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    names, T = result['domains'], len(result['domains'])
    methods = list(result['matrices'])
    fig, axes = plt.subplots(1, len(methods), figsize=(2.6 * len(methods) + 0.6, 0.45 * T + 1.6))
    for ax, m in zip(np.atleast_1d(axes), methods):
        a = np.asarray(result['matrices'][m], dtype=float)
        image = ax.imshow(a, cmap='viridis', vmin=0, vmax=1)
        for i in range(T):
            for j in range(i + 1):
                ax.text(j, i, f'{a[i, j]:.2f}', ha='center', va='center', fontsize=7, color='white')
        ax.set(xticks=range(T), yticks=range(T), title=m, xlabel='domain j')
        ax.set_xticklabels(names, rotation=45, ha='right', fontsize=7)
        ax.set_yticklabels(names if ax is np.atleast_1d(axes)[0] else [], fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel('after stage i')
    fig.colorbar(image, ax=list(np.atleast_1d(axes)), shrink=0.8)
    fig.savefig(path, dpi=120, bbox_inches='tight')
    plt.close(fig)
    return path
