"""Figures of a continual run: the accuracy matrix of every method side by side, and the per-stage curve."""
from __future__ import annotations

import numpy as np

from petl_vision.continual.metrics import stage_accuracies


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    return plt


def plot_matrices(result: dict, path: str) -> str:
    """One heat map per method (rows: after stage i; columns: stage j; stages not run yet are blank)."""
    plt = _pyplot()
    names, T = result['stages'], len(result['stages'])
    methods = list(result['matrices'])
    fig, axes = plt.subplots(1, len(methods), figsize=(2.4 * len(methods) + 0.6, 0.4 * T + 1.7))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, methods):
        a = np.asarray(result['matrices'][m], dtype=float)
        image = ax.imshow(a, cmap='viridis', vmin=0, vmax=1)
        for i in range(T):
            for j in range(i + 1):
                if not np.isnan(a[i, j]):
                    ax.text(j, i, f'{100 * a[i, j]:.0f}', ha='center', va='center', fontsize=6, color='white')
        ax.set(xticks=range(T), yticks=range(T), title=m, xlabel='stage j')
        ax.set_xticklabels(names, rotation=60, ha='right', fontsize=6)
        ax.set_yticklabels(names if ax is axes[0] else [], fontsize=6)
    axes[0].set_ylabel('after stage i')
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    fig.savefig(path, dpi=120, bbox_inches='tight')
    plt.close(fig)
    return path


def stage_curves(result: dict) -> dict[str, list[float]]:
    """Per method, ``A_i``: the accuracy on everything seen after each completed stage (sample-weighted)."""
    done = result['completed']
    sizes = result['test_sizes'][:done]
    return {m: stage_accuracies(np.asarray(a, dtype=float)[:done, :done], sizes).tolist()
            for m, a in result['matrices'].items()} if done else {m: [] for m in result['matrices']}


def plot_stage_curves(result: dict, path: str) -> str:
    """Accuracy on all seen stages after each stage, one line per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m, values in stage_curves(result).items():
        ax.plot(range(1, len(values) + 1), [100 * v for v in values], marker='o', ms=3, label=m)
    ax.set(xlabel='after stage', ylabel='accuracy on all seen stages (%)', ylim=(0, 100),
           xticks=range(1, result['completed'] + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
