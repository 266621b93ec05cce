"""Classification metrics: top-k accuracy and the VTAB-1k means.

The model's ``predict`` mode returns one dict per sample, ``{'pred_score': float (num_classes,), 'gt_label': int}``
(extra keys such as ``pred_label`` are ignored); :class:`Accuracy` reads those.

Ties are scored by their expectation under a random tie-break: with ``g`` classes scoring strictly higher than the
true class and ``t`` other classes scoring exactly as high, the true class is ranked ``g + 1 .. g + t + 1`` with
equal chance, so a sample counts ``clip((k - g) / (t + 1), 0, 1)`` towards top-k. A constant predictor over ``C``
classes thus scores ``k / C`` rather than 0 or 100 %, and the result never depends on how ``torch.topk`` orders ties.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from mmengine.evaluator import BaseMetric

from petl_vision.datasets.vtab import VTAB_GROUPS, VTAB_TASKS
from petl_vision.registry import METRICS


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, topk: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy in percent, ties counted fractionally (see the module docstring).

    Args:
        scores: (N, C) class scores (logits or probabilities).
        labels: (N,) int labels in ``0..C-1``.
        topk: the ``k`` to report; each is clipped to ``C``, duplicates after clipping are dropped.

    Returns:
        ``{k: accuracy}`` for the clipped ``k``.
    """
    num_classes = scores.shape[1]
    true = scores.gather(1, labels.long()[:, None])  # (N, 1)
    higher = (scores > true).sum(1)  # (N,)
    tied = (scores == true).sum(1) - 1  # (N,) other classes with the same score
    ks = sorted({min(int(k), num_classes) for k in topk})
    return {k: float(((k - higher) / (tied + 1)).clamp(0, 1).mean() * 100) for k in ks}


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy (percent) of ``pred_score`` against ``gt_label``; keys ``top1``, ``top5`` (``k`` clipped to the
    number of classes, so a 4-class task reports ``top1`` and ``top4``), logged as ``accuracy/top1``, ...

    Args:
        topk: the ``k`` to report.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[Mapping]) -> None:
        for sample in data_samples:
            self.results.append((torch.as_tensor(sample['pred_score']).detach().float().cpu(),
                                 int(sample['gt_label'])))

    def compute_metrics(self, results: list) -> dict[str, float]:
        scores = torch.stack([score for score, _ in results])  # (N, C)
        labels = torch.tensor([label for _, label in results])  # (N,)
        return {f'top{k}': acc for k, acc in topk_accuracy(scores, labels, self.topk).items()}


@METRICS.register_module()
class MultiTaskAccuracy(BaseMetric):
    """Top-1 accuracy (percent) per task of a multi-task model's predictions (each with its ``task``), and their
    unweighted mean: keys ``<task>/top1`` and ``mean/top1`` (logged as ``val/<task>/top1``, ``val/mean/top1``)."""

    default_prefix = ''  # keys as they are: val/<task>/top1

    def process(self, data_batch, data_samples: Sequence[Mapping]) -> None:
        for sample in data_samples:
            self.results.append((sample['task'], torch.as_tensor(sample['pred_score']).detach().float().cpu(),
                                 int(sample['gt_label'])))

    def compute_metrics(self, results: list) -> dict[str, float]:
        out = {}
        for task in dict.fromkeys(t for t, _, _ in results):
            rows = [(s, y) for t, s, y in results if t == task]
            scores, labels = torch.stack([s for s, _ in rows]), torch.tensor([y for _, y in rows])
            out[f'{task}/top1'] = topk_accuracy(scores, labels, (1,))[1]
        out['mean/top1'] = sum(out.values()) / len(out)
        return out


def vtab_means(results: Mapping[str, float]) -> dict[str, float]:
    """VTAB-1k summary of per-task top-1 accuracies keyed by NOAH's task names (all 19 required).

    Returns ``mean_19`` (the plain mean over the 19 tasks, as VPT, SSF and V-PETL Bench report), ``natural``,
    ``specialized``, ``structured`` (group means) and ``mean_of_groups`` (the mean of the three group means, as
    NOAH reports): always say which mean a table shows.
    """
    missing, unknown = sorted(set(VTAB_TASKS) - set(results)), sorted(set(results) - set(VTAB_TASKS))
    if missing or unknown:
        raise KeyError(f'vtab_means needs the 19 VTAB-1k tasks by NOAH folder name; missing {missing}, '
                       f'unknown {unknown}')
    groups = {g: [float(results[t]) for t, (group, _) in VTAB_TASKS.items() if group == g] for g in VTAB_GROUPS}
    means = {g: sum(v) / len(v) for g, v in groups.items()}
    return {'mean_19': sum(float(v) for v in results.values()) / len(results), **means,
            'mean_of_groups': sum(means.values()) / len(means)}
