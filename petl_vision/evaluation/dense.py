"""Metrics of multi-task dense prediction (PASCAL-Context, NYUD-v2) and the multi-task gain delta_m.

Every metric is accumulated as per-image sufficient statistics and reduced over the whole set, so evaluating in
batches, on several ranks or in one go gives the same number. Conventions (see ``docs/dense_multitask.md``):

- semseg / human_parts: mIoU in percent from a confusion matrix over pixels whose label is not 255; the mean runs
  over classes that occur in the labels or the predictions.
- sal: thresholds 0.05, 0.10, ..., 0.95 on the predicted probability. ``maxF``: the best over thresholds of the
  F-measure (beta^2 = 0.3) of the set-level precision and recall; ``mIoU``: the best over thresholds of the
  per-image IoU of the foreground averaged over images (an image with empty label and prediction scores 1), as
  MTLoRA's ``eval_sal*.py``. Both in percent.
- normals: angle in degrees between predicted and labelled normals over labelled pixels (label norm > 0 and no
  255 component): ``mean``, ``rmse`` and the percentage of pixels within 11.25 / 22.5 / 30 degrees.
- depth: ``rmse`` over labelled pixels (label > 0), in the labels' unit (metres).
"""
from __future__ import annotations

import json
import math
import os.path as osp
from collections.abc import Collection, Mapping, Sequence

import torch
import yaml
from mmengine.evaluator import BaseMetric

from petl_vision.registry import METRICS

IGNORE_INDEX = 255
SAL_THRESHOLDS = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
NORMAL_ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)
# The metric each task contributes to delta_m, as MTLoRA's calculate_multi_task_performance.
DELTA_M_METRICS = {'semseg': 'semseg/mIoU', 'human_parts': 'human_parts/mIoU', 'sal': 'sal/mIoU',
                   'normals': 'normals/mean', 'depth': 'depth/rmse'}
LOWER_IS_BETTER = frozenset({'normals/mean', 'normals/rmse', 'depth/rmse'})


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Pixel counts ``(num_classes, num_classes)`` int64, rows = label, columns = prediction.

    Args:
        pred: class indices (H, W), or scores (C, H, W) that are arg-maxed over C.
        gt: class indices (H, W); ``ignore_index`` pixels are skipped.
    """
    if pred.dim() == gt.dim() + 1:
        pred = pred.argmax(0)
    _check_same_size(pred, gt)
    valid = gt != ignore_index
    gt, pred = gt[valid].long(), pred[valid].long()
    if gt.numel() and (gt.max() >= num_classes or gt.min() < 0):
        raise ValueError(f'label values must be in [0, {num_classes}) or {ignore_index}; got {gt.unique().tolist()}')
    pred = pred.clamp(0, num_classes - 1)
    return torch.bincount(gt * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(conf: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(mIoU in percent, per-class IoU in [0, 1] with NaN for classes in neither labels nor predictions)``."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float('nan')))
    return 100.0 * iou.nanmean().item(), iou


def saliency_stats(prob: torch.Tensor, gt: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Per-threshold counts of one image, (4, T) float64: true positives, predicted positives, labelled
    positives and the foreground IoU, for thresholds :data:`SAL_THRESHOLDS` (prediction = ``prob >= t``).

    Args:
        prob: foreground probability (H, W) or (1, H, W) in [0, 1].
        gt: 0 / 1 (H, W) or (1, H, W); ``ignore_index`` pixels are skipped.
    """
    prob, gt = prob.reshape(-1).double(), gt.reshape(-1)
    if prob.numel() != gt.numel():
        raise ValueError(f'saliency prediction has {prob.numel()} pixels, label {gt.numel()}; '
                         'resize predictions to the label size first')
    valid = gt != ignore_index
    prob, fg = prob[valid], (gt[valid] == 1).double()
    pred = (prob[None] >= SAL_THRESHOLDS[:, None]).double()  # (T, N)
    tp = pred @ fg
    pp = pred.sum(1)
    ap = fg.sum().expand_as(tp)
    union = pp + ap - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.ones_like(tp))  # empty label and prediction: 1
    return torch.stack([tp, pp, ap, iou])


def saliency_scores(stats: Sequence[torch.Tensor], beta_sq: float = 0.3) -> dict[str, float]:
    """``{'maxF', 'mIoU'}`` in percent from the :func:`saliency_stats` of every image."""
    s = torch.stack(list(stats))  # (images, 4, T)
    tp, pp, ap = s[:, 0].sum(0), s[:, 1].sum(0), s[:, 2].sum(0)
    precision = tp / pp.clamp_min(1e-12)
    recall = tp / ap.clamp_min(1e-12)
    f = (1 + beta_sq) * precision * recall / (beta_sq * precision + recall).clamp_min(1e-12)
    return {'maxF': 100.0 * f.max().item(), 'mIoU': 100.0 * s[:, 3].mean(0).max().item()}


def normal_angle_errors(pred: torch.Tensor, gt: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Angles in degrees (N,) between ``pred`` and ``gt`` (3, H, W) at labelled pixels (gt norm > 0 and no
    component equal to ``ignore_index``). Both are normalised first, so ``pred`` need not be unit length."""
    _check_same_size(pred, gt)
    gt = gt.double()
    valid = (gt.norm(dim=0) > 0) & (gt != ignore_index).all(0)  # (H, W)
    p = torch.nn.functional.normalize(pred.double()[:, valid], dim=0)  # (3, N)
    g = torch.nn.functional.normalize(gt[:, valid], dim=0)
    return torch.rad2deg(torch.acos((p * g).sum(0).clamp(-1, 1)))


def normal_stats(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(count, sum of angles, sum of squared angles, counts within each of :data:`NORMAL_ANGLE_THRESHOLDS`)."""
    err = normal_angle_errors(pred, gt)
    within = [(err < t).sum().double() for t in NORMAL_ANGLE_THRESHOLDS]
    return torch.stack([torch.tensor(float(err.numel()), dtype=torch.float64), err.sum(), err.square().sum(), *within])


def normal_scores(stats: Sequence[torch.Tensor]) -> dict[str, float]:
    """``{'mean', 'rmse', '11.25', '22.5', '30'}`` (degrees; percentages of pixels) from :func:`normal_stats`."""
    s = torch.stack(list(stats)).sum(0)
    n = s[0].clamp_min(1)
    scores = {'mean': (s[1] / n).item(), 'rmse': (s[2] / n).sqrt().item()}
    scores.update({f'{t:g}': (100.0 * s[3 + i] / n).item() for i, t in enumerate(NORMAL_ANGLE_THRESHOLDS)})
    return scores


def depth_stats(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(count, sum of squared errors) over pixels with gt > 0; ``pred`` and ``gt`` (1, H, W) or (H, W)."""
    pred, gt = pred.reshape(-1).double(), gt.reshape(-1).double()
    if pred.numel() != gt.numel():
        raise ValueError(f'depth prediction has {pred.numel()} pixels, label {gt.numel()}; '
                         'resize predictions to the label size first')
    valid = gt > 0
    return torch.stack([valid.sum().double(), (pred[valid] - gt[valid]).square().sum()])


def depth_rmse(stats: Sequence[torch.Tensor]) -> float:
    """Root mean squared error over all labelled pixels of the set, from :func:`depth_stats`."""
    s = torch.stack(list(stats)).sum(0)
    return math.sqrt(s[1].item() / max(s[0].item(), 1.0))


def delta_m(results: Mapping[str, float], single_task: Mapping[str, float],
            lower_is_better: Collection[str] = LOWER_IS_BETTER) -> float:
    """Multi-task gain over single-task baselines, in percent:
    ``(1/T) sum_t (-1)^{l_t} (M_t - M_single_t) / M_single_t * 100`` over the metrics ``t`` of ``single_task``,
    with ``l_t = 1`` for metrics in ``lower_is_better``. Positive means better than the single-task models.
    """
    if not single_task:
        raise ValueError('delta_m needs at least one single-task baseline metric')
    missing = sorted(set(single_task) - set(results))
    if missing:
        raise KeyError(f'delta_m: results lack {missing} that the single-task baselines have; '
                       f'results have {sorted(results)}')
    total = 0.0
    for name, base in single_task.items():
        if base == 0:
            raise ValueError(f"delta_m: single-task baseline '{name}' is 0; relative change is undefined")
        sign = -1.0 if name in lower_is_better else 1.0
        total += sign * (results[name] - base) / base
    return 100.0 * total / len(single_task)


def load_single_task_baselines(path: str) -> dict[str, float]:
    """Read single-task results from a JSON or YAML file into ``{'task/metric': value}``.

    The file maps metric names to numbers, flat (``{"semseg/mIoU": 67.21}``) or nested one level
    (``{"semseg": {"mIoU": 67.21}}``), in the units this module reports (percent, degrees, metres).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'single-task baselines file {path} does not exist')
    with open(path) as f:
        data = json.load(f) if path.endswith('.json') else yaml.safe_load(f)
    if not isinstance(data, Mapping):
        raise TypeError(f'{path} must hold a mapping of metric names to numbers, got {type(data).__name__}')
    flat: dict[str, float] = {}
    for key, value in data.items():
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in items:
            name = str(key) if sub is None else f'{key}/{sub}'
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{path}: '{name}' must be a number, got {v!r}")
            flat[name] = float(v)
    return flat


def _check_same_size(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape[-2:] != gt.shape[-2:]:
        raise ValueError(f'prediction is {tuple(pred.shape)}, label {tuple(gt.shape)}: spatial sizes differ; '
                         'resize predictions to the label size before evaluation')


@METRICS.register_module()
class MultiTaskDenseMetric(BaseMetric):
    """All dense task metrics of a multi-task model, plus delta_m when single-task baselines are given.

    ``process`` receives, per image, ``{'pred': {task: tensor}, 'gt': {task: tensor}}`` at the label's size:

    - semseg / human_parts: pred class indices (H, W) or scores (C, H, W); gt int (H, W), 255 ignored.
    - sal: pred foreground probability in [0, 1], (H, W) or (1, H, W); gt 0 / 1 (H, W), 255 ignored.
    - normals: pred (3, H, W), any length; gt (3, H, W), zero vector (or 255) where unlabelled.
    - depth: pred (1, H, W) or (H, W); gt the same, 0 where unlabelled.

    Args:
        tasks: tasks to score; every sample must carry them in ``pred`` and ``gt``.
        num_classes: classes of the segmentation tasks, e.g. ``dict(semseg=21, human_parts=7)``.
        single_task_baselines: JSON / YAML file (:func:`load_single_task_baselines`); adds ``delta_m`` computed
            over the :data:`DELTA_M_METRICS` of ``tasks``.
        ignore_index: label value of unlabelled pixels.

    Returns (from ``evaluate``) keys ``'{task}/{metric}'`` (``semseg/mIoU``, ``sal/maxF``, ``normals/mean``, ...)
    and ``delta_m``.
    """

    default_prefix = 'dense'

    def __init__(self, tasks: Sequence[str], num_classes: Mapping[str, int] | None = None,
                 single_task_baselines: str | None = None, ignore_index: int = IGNORE_INDEX, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tasks = tuple(tasks)
        unknown = sorted(set(self.tasks) - set(DELTA_M_METRICS))
        if unknown:
            raise ValueError(f'unknown dense tasks {unknown}; known: {sorted(DELTA_M_METRICS)}')
        self.num_classes = dict(num_classes or {})
        seg_missing = [t for t in self.tasks if t in ('semseg', 'human_parts') and t not in self.num_classes]
        if seg_missing:
            raise ValueError(f'num_classes needs an entry for {seg_missing}, e.g. num_classes=dict(semseg=21, '
                             'human_parts=7) for PASCAL-Context or dict(semseg=40) for NYUD')
        self.ignore_index = ignore_index
        self.baselines = None
        if single_task_baselines is not None:
            baselines = load_single_task_baselines(single_task_baselines)
            wanted = [DELTA_M_METRICS[t] for t in self.tasks]
            missing = [m for m in wanted if m not in baselines]
            if missing:
                raise KeyError(f'{single_task_baselines} lacks single-task results for {missing}')
            self.baselines = {m: baselines[m] for m in wanted}

    def process(self, data_batch, data_samples: Sequence[Mapping]) -> None:
        for sample in data_samples:
            pred, gt = sample['pred'], sample['gt']
            missing = [t for t in self.tasks if t not in pred or t not in gt]
            if missing:
                raise KeyError(f'MultiTaskDenseMetric scores {list(self.tasks)} but a sample lacks {missing} in '
                               f"'pred' {sorted(pred)} or 'gt' {sorted(gt)}")
            self.results.append({task: self._stats(task, pred[task].detach().cpu(), gt[task].detach().cpu())
                                 for task in self.tasks})

    def _stats(self, task: str, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if task in ('semseg', 'human_parts'):
            return confusion_matrix(pred, gt, self.num_classes[task], self.ignore_index)
        if task == 'sal':
            return saliency_stats(pred, gt, self.ignore_index)
        if task == 'normals':
            return normal_stats(pred, gt)
        return depth_stats(pred, gt)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for task in self.tasks:
            stats = [r[task] for r in results]
            if task in ('semseg', 'human_parts'):
                metrics[f'{task}/mIoU'] = iou_from_confusion(torch.stack(stats).sum(0))[0]
            elif task == 'sal':
                metrics.update({f'sal/{k}': v for k, v in saliency_scores(stats).items()})
            elif task == 'normals':
                metrics.update({f'normals/{k}': v for k, v in normal_scores(stats).items()})
            else:
                metrics['depth/rmse'] = depth_rmse(stats)
        if self.baselines is not None:
            metrics['delta_m'] = delta_m(metrics, self.baselines)
        return metrics
