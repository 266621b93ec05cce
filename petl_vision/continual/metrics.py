"""Continual-learning metrics from an accuracy matrix, each named by its formula.

``R[i][j]`` is the accuracy on task ``j``'s test set after training task ``i`` (``T x T``; entries with ``j > i``
are only read by :func:`forward_transfer`, NaN is fine elsewhere). The field gives one name several formulas
(L2P/DualPrompt "average accuracy" is :func:`final_average_accuracy`, PILOT/InfLoRA "average accuracy" is
:func:`average_incremental_accuracy`; CODA-Prompt's forgetting is not L2P's), so every function here says which:

- final average accuracy: ``1/T sum_j R[T-1][j]``;
- average incremental accuracy: ``1/T sum_i A_i`` with ``A_i = sum_{j<=i} n_j R[i][j] / sum_{j<=i} n_j``, the
  accuracy on everything seen after stage ``i`` (``n_j``: task ``j``'s test-set size; equal by default);
- max-based forgetting (L2P, DualPrompt, PILOT): ``1/(T-1) sum_{j<T-1} (max_{j<=i<T-1} R[i][j] - R[T-1][j])``;
- consecutive-drop forgetting (CODA-Prompt's ``utils/calc_forgetting.py``):
  ``1/(T-1) sum_{t=1}^{T-1} 1/t sum_{j<t} (R[t-1][j] - R[t][j])``;
- backward transfer (GEM): ``1/(T-1) sum_{j<T-1} (R[T-1][j] - R[j][j])`` (negative: forgetting);
- forward transfer (GEM): ``1/(T-1) sum_{j>=1} (R[j-1][j] - b_j)``, ``b_j`` the accuracy on task ``j`` of the
  model before any training (its own head, random init or frozen features).

All values are in the matrix's own unit (fractions or percent).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Matrix = Sequence[Sequence[float]] | np.ndarray


def as_matrix(R: Matrix) -> np.ndarray:
    """``R`` as a float (T, T) array; a clear error for another shape."""
    a = np.asarray(R, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f'the accuracy matrix must be square (T, T) with R[i][j] the accuracy on task j after '
                         f'training task i; got shape {a.shape}')
    if np.isnan(np.tril(a)).any():
        raise ValueError('the accuracy matrix has NaN on or below its diagonal: every task seen after stage i '
                         'must be evaluated (R[i][j] for j <= i)')
    return a


def _needs_two(a: np.ndarray, name: str) -> None:
    if len(a) < 2:
        raise ValueError(f'{name} needs at least two tasks; got a {a.shape} accuracy matrix')


def final_average_accuracy(R: Matrix) -> float:
    """Mean per-task accuracy after the last task (L2P / DualPrompt / CODA-Prompt "average accuracy")."""
    a = as_matrix(R)
    return float(a[-1].mean())


def stage_accuracies(R: Matrix, sizes: Sequence[int] | None = None) -> np.ndarray:
    """``A_i``: the accuracy on all tasks seen after stage ``i``, each task weighted by its test-set size."""
    a = as_matrix(R)
    n = np.ones(len(a)) if sizes is None else np.asarray(sizes, dtype=np.float64)
    if n.shape != (len(a),) or (n <= 0).any():
        raise ValueError(f'sizes must give a positive test-set size for each of the {len(a)} tasks; got {sizes}')
    return np.array([(a[i, :i + 1] * n[:i + 1]).sum() / n[:i + 1].sum() for i in range(len(a))])


def average_incremental_accuracy(R: Matrix, sizes: Sequence[int] | None = None) -> float:
    """Mean over stages of the accuracy on all seen classes (PILOT / InfLoRA "average accuracy")."""
    return float(stage_accuracies(R, sizes).mean())


def max_forgetting(R: Matrix) -> float:
    """Mean over old tasks of the best accuracy before the last stage minus the final one (L2P, PILOT)."""
    a = as_matrix(R)
    _needs_two(a, 'forgetting')
    T = len(a)
    return float(np.mean([a[j:T - 1, j].max() - a[T - 1, j] for j in range(T - 1)]))


def consecutive_forgetting(R: Matrix) -> float:
    """CODA-Prompt's forgetting: the drops between consecutive stages, averaged per stage, then over stages."""
    a = as_matrix(R)
    _needs_two(a, 'forgetting')
    T = len(a)
    return float(sum((a[t - 1, :t] - a[t, :t]).sum() / t for t in range(1, T)) / (T - 1))


def backward_transfer(R: Matrix) -> float:
    """GEM's BWT: mean over old tasks of the final accuracy minus the accuracy right after learning the task."""
    a = as_matrix(R)
    _needs_two(a, 'backward transfer')
    return float(np.mean(a[-1, :-1] - np.diag(a)[:-1]))


def forward_transfer(R: Matrix, baseline: Sequence[float]) -> float:
    """GEM's FWT: mean over tasks ``j >= 1`` of the accuracy on ``j`` before training it minus ``baseline[j]``."""
    a = np.asarray(R, dtype=np.float64)
    as_matrix(a)
    _needs_two(a, 'forward transfer')
    b = np.asarray(baseline, dtype=np.float64)
    if b.shape != (len(a),):
        raise ValueError(f'baseline must hold one accuracy per task ({len(a)}), got shape {b.shape}')
    ahead = np.array([a[j - 1, j] for j in range(1, len(a))])
    if np.isnan(ahead).any():
        raise ValueError('forward transfer reads R[j-1][j] (task j before training it): evaluate each next task')
    return float(np.mean(ahead - b[1:]))


def summary(R: Matrix, sizes: Sequence[int] | None = None) -> dict[str, float]:
    """Every metric above that the matrix alone defines, keyed by its formula's name."""
    out = {'final_average_accuracy': final_average_accuracy(R),
           'average_incremental_accuracy': average_incremental_accuracy(R, sizes)}
    if len(as_matrix(R)) > 1:
        out.update(max_forgetting=max_forgetting(R), consecutive_forgetting=consecutive_forgetting(R),
                   backward_transfer=backward_transfer(R))
    return out


def plot_accuracy_matrix(R: Matrix, path: str, title: str = 'accuracy matrix', task_names: Sequence[str] | None = None
                         ) -> str:
    """Write a heat map of ``R`` (rows: after training task i; columns: evaluated on task j) to ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    a = np.asarray(R, dtype=np.float64)
    as_matrix(a)
    names = list(task_names) if task_names is not None else [str(i) for i in range(len(a))]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(a), 0.8 + 0.5 * len(a)))
    image = ax.imshow(np.where(np.tril(np.ones_like(a)) > 0, a, np.nan), cmap='viridis')
    for i in range(len(a)):
        for j in range(i + 1):
            ax.text(j, i, f'{a[i, j]:.2f}' if a[i, j] <= 1 else f'{a[i, j]:.1f}', ha='center', va='center',
                    fontsize=7, color='white')
    ax.set(xticks=range(len(a)), yticks=range(len(a)), xticklabels=names, yticklabels=names, title=title,
           xlabel='evaluated on task j', ylabel='after training task i')
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
