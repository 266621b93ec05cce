"""``MultiTaskClassifier``: one frozen backbone, one named adapter and one head per task, mixed-task batches.

The VLM idea (Lin, Madotto & Fung, Findings of EMNLP 2020) for vision: every task has its own small adapter on the
shared frozen backbone and its own head (heads of different sizes); a batch may mix tasks, each sample routed
through its task's adapter in one forward pass (``tuner_context(adapter=[task per sample])``, see
``petl_vision/tuners/routing.py``). Variants, all with per-task heads:

- ``adapters='per_task'`` (default): ``plan`` (or ``plans[task]``, e.g. a bottleneck per task as VLM) per task;
- ``adapters='shared'``: one adapter for every task (``plan='full'``: multi-task full fine-tuning);
- ``plan='linear'``: no adapter, linear probes on the frozen features.

Batches (``MultiTaskDataset``, ``default_collate``): ``inputs`` (B, 3, H, W) uint8, ``data_samples`` (B,) labels in
each sample's own task's label space, ``task`` list of B names. The loss is the mean cross-entropy over the batch
(each sample scored by its task's head); ``mode='predict'`` returns one dict per sample with its ``task``, which
:class:`~petl_vision.evaluation.MultiTaskAccuracy` reads.
"""
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.model import BaseModel
from torch import nn
from torch.nn import functional as F

from ..registry import MODELS
from ..tuners import (adapter_parameters, add_adapter, apply_tuners, backbone_fingerprint, count_parameters,
                      list_adapters, tuner_context)
from .backbone_builder import build_timm_backbone, pretrained_mean_std
from .classifier import check_labels
from .config_check import check_init_keys

SHARED = 'shared'


@MODELS.register_module()
@check_init_keys
class MultiTaskClassifier(BaseModel):
    """Args:
        backbone: kwargs of :func:`build_timm_backbone`; its own head is removed (``num_classes=0``).
        tasks: task name -> number of classes (one head each).
        plan: the plan of every task's adapter (a preset or a list of tuner dicts).
        plans: per-task plans that replace ``plan`` for those tasks (VLM's per-task bottleneck).
        adapters: ``'per_task'`` or ``'shared'``.
        label_smoothing: cross-entropy label smoothing.
    """

    def __init__(self, backbone: dict[str, Any], tasks: Mapping[str, int], plan: str | list[dict] = 'lora',
                 plans: Mapping[str, str | list[dict]] | None = None, adapters: str = 'per_task',
                 label_smoothing: float = 0.0, data_preprocessor: dict | None = None, init_cfg=None):
        if adapters not in ('per_task', SHARED):
            raise ValueError(f"adapters must be 'per_task' or 'shared', got {adapters!r}")
        if not tasks:
            raise ValueError('tasks must name at least one task and its number of classes, e.g. {"digit": 10}')
        unknown = sorted(set(plans or {}) - set(tasks))
        if unknown:
            raise ValueError(f'plans name tasks {unknown} that are not in tasks {list(tasks)}')
        net = build_timm_backbone(**{**backbone, 'num_classes': 0})
        mean, std = pretrained_mean_std(net)
        preprocessor = {'type': 'ImgDataPreprocessor', 'mean': mean, 'std': std, **(data_preprocessor or {})}
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.tasks = dict(tasks)
        self.mode = adapters
        self.backbone = self._attach(net, plan, dict(plans or {}))
        self.heads = nn.ModuleDict({t: task_head(net.num_features, n) for t, n in self.tasks.items()})
        self.label_smoothing = label_smoothing

    def _attach(self, net: nn.Module, plan, plans: dict) -> nn.Module:
        if self.mode == SHARED or plan in ('linear', 'full'):
            if plans:
                raise ValueError('per-task plans need adapters="per_task" and an adapter plan (not linear/full)')
            return apply_tuners(net, plan)  # one 'default' adapter for every task (none for 'linear')
        for task in self.tasks:
            add_adapter(net, task, plans.get(task, plan))
        return net

    def init_weights(self) -> None:
        """Keep the weights set at construction (see ``ImageClassifier.init_weights``)."""
        self._is_init = True

    @property
    def routed(self) -> bool:
        return self.mode == 'per_task' and bool(getattr(self.backbone, 'petl_adapters', None)) and \
            'default' not in self.backbone.petl_adapters

    def features(self, inputs: torch.Tensor, task: Sequence[str]) -> torch.Tensor:
        """(B, num_features) pooled features, each sample through its task's adapter."""
        if not self.routed:
            return self.backbone(inputs)
        with tuner_context(adapter=list(task)):
            return self.backbone(inputs)

    def forward(self, inputs: torch.Tensor, data_samples: torch.Tensor | None = None, mode: str = 'tensor',
                task: Sequence[str] | None = None):
        task = self._tasks_of(task, inputs.shape[0])
        groups, logits = self.task_logits(self.features(inputs, task), task)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return self._losses(logits, groups, data_samples, inputs.shape[0])
        if mode == 'predict':
            return self._predictions(logits, groups, data_samples, inputs.shape[0])
        raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}')

    def task_logits(self, feats: torch.Tensor, task: Sequence[str]) -> tuple[dict, dict]:
        """feats (B, C) -> (task -> row indices, task -> (n_t, C_t) logits of its head)."""
        groups = {t: torch.tensor([i for i, s in enumerate(task) if s == t], device=feats.device)
                  for t in dict.fromkeys(task)}
        return groups, {t: self.heads[t](feats[idx]) for t, idx in groups.items()}

    def _tasks_of(self, task: Sequence[str] | None, batch: int) -> list[str]:
        if task is None:
            if len(self.tasks) == 1:
                return [next(iter(self.tasks))] * batch
            raise ValueError(f'MultiTaskClassifier needs each sample\'s task (tasks: {list(self.tasks)}); use a '
                             'MultiTaskDataset, which packs it, or pass task=[...]')
        task = [task] * batch if isinstance(task, str) else list(task)
        unknown = sorted(set(task) - set(self.tasks))
        if unknown:
            raise ValueError(f'tasks {unknown} in this batch have no head; the model has {list(self.tasks)}')
        return task

    def _losses(self, logits: dict, groups: dict, labels: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        total, out = 0.0, {}
        for t, idx in groups.items():
            y = labels[idx]
            check_labels(y, logits[t].shape[-1])
            ce = F.cross_entropy(logits[t], y, label_smoothing=self.label_smoothing)
            total = total + ce * (len(idx) / batch)  # the batch mean over samples
            out[f'ce_{t}'] = ce.detach()
        return {'loss': total, **out}

    def _predictions(self, logits: dict, groups: dict, labels: torch.Tensor | None, batch: int) -> list[dict]:
        out: list[dict | None] = [None] * batch
        for t, idx in groups.items():
            scores = logits[t].float().softmax(-1)
            for j, i in enumerate(idx.tolist()):
                gt = int(labels[i]) if labels is not None else None
                out[i] = {'task': t, 'pred_score': scores[j], 'pred_label': int(scores[j].argmax()), 'gt_label': gt}
        return out

    def tuner_files(self, name: str) -> list[tuple[str, str | None, nn.Module]]:
        """(file, adapter, owner) per tuner file of a checkpoint ``name`` (``TunerCheckpointHook``): with an adapter
        per task, ``<stem>_<task>.safetensors`` holding that task's adapter and head (load it with
        ``load_tuners(backbone, path, owner=model.heads[task], adapter=task)``); otherwise one file with every head."""
        if not self.routed:
            return [(name, None, self)]
        stem = name.removesuffix('.safetensors')
        return [(f'{stem}_{t}.safetensors', t, self.heads[t]) for t in self.tasks]

    def parameter_counts(self) -> dict[str, Any]:
        """Trainable parameters per task (its adapter, or the shared one, and its head, each as % of the frozen
        backbone), the backbone's size, and the totals."""
        backbone = backbone_fingerprint(self.backbone)['num_params']
        per_task = {}
        for t in self.tasks:
            names = [t] if self.routed else list_adapters(self.backbone)
            adapter = sum(p.numel() for a in names for p in adapter_parameters(self.backbone, a))
            head = sum(p.numel() for p in self.heads[t].parameters())
            per_task[t] = {'adapter': adapter, 'head': head, 'percent_of_backbone': 100 * adapter / backbone}
        counts = count_parameters(self)
        return {'per_task': per_task, 'backbone': backbone, 'trainable': counts['trainable'], 'total': counts['total']}


def task_head(features: int, classes: int) -> nn.Linear:
    head = nn.Linear(features, classes)
    nn.init.trunc_normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    return head
