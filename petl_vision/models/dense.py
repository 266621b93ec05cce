"""``MultiTaskDenseModel``: a tuned timm backbone's stage maps -> one light decoder per dense task.

Batches (``default_collate`` of :class:`~petl_vision.datasets.dense_multitask.DenseMultiTaskDataset`):
``inputs`` uint8 (B, 3, H, W), ``data_samples`` ``{task: (B, H, W) int64 | (B, 3, H, W) | (B, 1, H, W)}``.

One forward runs every task. Where a tuner is task-conditioned (``context_keys`` holds ``'task'``: hyper-adapters,
per-task adapters) the backbone runs once per task inside ``tuner_context(task=...)``; otherwise once, its maps
shared by all decoders. ``mode='predict'`` returns one ``{'pred': {task: map}, 'gt': {task: map}}`` per image, at
the input size, as :class:`~petl_vision.evaluation.dense.MultiTaskDenseMetric` reads them.
"""
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.model import BaseModel
from torch import nn
from torch.nn import functional as F

from ..backbones import describe
from ..datasets.dense_transforms import IGNORE_INDEX
from ..registry import MODELS
from ..tuners import apply_tuners, get_tuner_cls, tuned_ops, tuner_context
from ..tuners.presets import resolve_plan
from .backbone_builder import build_timm_backbone, pretrained_mean_std
from .config_check import check_init_keys

# output channels of each task besides the segmentation tasks' class counts
FIXED_OUTPUTS = {'sal': 1, 'normals': 3, 'depth': 1}
SEGMENTATION_TASKS = ('semseg', 'human_parts')


def task_outputs(tasks: Sequence[str], num_classes: Mapping[str, int]) -> dict[str, int]:
    """Decoder output channels per task; segmentation tasks need their class count in ``num_classes``."""
    out = {}
    for task in tasks:
        if task in SEGMENTATION_TASKS:
            if task not in num_classes:
                raise ValueError(f'num_classes needs an entry for {task!r} (PASCAL-Context: semseg=21, '
                                 'human_parts=7; NYUD-v2: semseg=40)')
            out[task] = int(num_classes[task])
        elif task in FIXED_OUTPUTS:
            out[task] = FIXED_OUTPUTS[task]
        else:
            raise ValueError(f'unknown dense task {task!r}; known: {[*SEGMENTATION_TASKS, *FIXED_OUTPUTS]}')
    return out


TAPS = ('stages', 'merged')


def tap_channels(net: nn.Module, taps: str) -> list[int]:
    """Channels of the maps :meth:`MultiTaskDenseModel.stage_maps` returns for ``taps``."""
    if taps not in TAPS:
        raise ValueError(f'taps must be one of {TAPS}, got {taps!r}')
    channels = [info['num_chs'] for info in net.feature_info]
    if taps == 'stages':
        return channels
    layers = getattr(net, 'layers', None)
    if layers is None or not all(hasattr(layer, 'downsample') for layer in layers[1:]):
        raise ValueError(f"taps='merged' needs a hierarchical backbone with patch merging at the start of each "
                         f"stage (timm's Swin: layers[i].downsample); {type(net).__name__} has none, use "
                         "taps='stages'")
    return channels[1:] + channels[-1:]


def fill_tasks(plan: list[dict], tasks: Sequence[str]) -> list[dict]:
    """Give task-conditioned plan entries that do not list ``tasks`` the model's tasks."""
    for entry in plan:
        cls = get_tuner_cls(entry['type'])
        if 'task' in getattr(cls, 'context_keys', ()) and entry.get('tasks') is None:
            entry['tasks'] = list(tasks)
    return plan


@MODELS.register_module()
@check_init_keys
class MultiTaskDenseModel(BaseModel):
    """Args:
        backbone: kwargs of :func:`build_timm_backbone` (``model``, ``pretrained``, ``img_size``, timm kwargs);
            the classification head is dropped (``num_classes=0``).
        tasks: dense tasks, e.g. ``('semseg', 'human_parts', 'sal', 'normals')``.
        num_classes: classes of the segmentation tasks, e.g. ``dict(semseg=21, human_parts=7)``.
        plan: preset name or tuner plan for the backbone (task-conditioned entries get ``tasks`` filled in).
        trainable: backbone parameter globs trained besides the tuners.
        decoder: kwargs of :class:`MultiScaleHead` (``type`` another registered decoder taking ``in_channels`` and
            ``num_outputs``).
        loss_weights: per-task weights of the summed loss (default 1).
        sal_pos_weight: weight of foreground pixels in the balanced saliency BCE (ASTMT / MTLoRA: 0.95).
        taps: which maps the decoders read. ``'stages'``: each stage's output (timm's layout; Swin-T 96 / 192 /
            384 / 768 channels at strides 4 / 8 / 16 / 32). ``'merged'``: each stage's output after the next
            stage's patch merging, the last stage as it is (the layout of Microsoft's Swin code, which MTLoRA's
            Polyhistor benchmark reads: 192 / 384 / 768 / 768 channels at strides 8 / 16 / 32 / 32).

    The backbone's final norm is removed: no map the decoders read passes through it, and a trainable parameter
    without gradient would be counted as trained and break DDP.
    """

    def __init__(self, backbone: dict[str, Any], tasks: Sequence[str], num_classes: Mapping[str, int] | None = None,
                 plan: str | list[dict] = 'linear', trainable: Sequence[str] = (), decoder: dict | None = None,
                 loss_weights: Mapping[str, float] | None = None, sal_pos_weight: float = 0.95,
                 taps: str = 'stages', data_preprocessor: dict | None = None, init_cfg=None):
        net = build_timm_backbone(**{'num_classes': 0, **backbone})
        if isinstance(getattr(net, 'norm', None), nn.LayerNorm):
            net.norm = nn.Identity()  # forward_intermediates(norm=False) never uses it
        mean, std = pretrained_mean_std(net)
        preprocessor = {'type': 'ImgDataPreprocessor', 'mean': mean, 'std': std, **(data_preprocessor or {})}
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.tasks = tuple(tasks)
        self.outputs = task_outputs(self.tasks, num_classes or {})
        plan = fill_tasks(resolve_plan(plan, describe(net)), self.tasks)
        self.backbone = apply_tuners(net, plan, trainable=tuple(trainable))
        self.taps = taps
        self.stage_channels = tap_channels(net, taps)
        decoder = dict(decoder or {})
        decoder_type = decoder.pop('type', 'MultiScaleHead')
        self.decoders = nn.ModuleDict({
            t: MODELS.build({'type': decoder_type, 'in_channels': self.stage_channels, 'num_outputs': k, **decoder})
            for t, k in self.outputs.items()})
        unknown = sorted(set(loss_weights or {}) - set(self.tasks))
        if unknown:
            raise ValueError(f'loss_weights for {unknown}, which are not among the tasks {list(self.tasks)}')
        self.loss_weights = {t: float((loss_weights or {}).get(t, 1.0)) for t in self.tasks}
        self.sal_pos_weight = sal_pos_weight

    def init_weights(self) -> None:
        """Keep the weights set at construction (pretrained backbone, tuners' and decoders' own initialisation):
        mmengine's Runner calls ``init_weights``, and ``BaseModule`` would recurse into timm's Swin
        ``init_weights``, which redraws the pretrained weights."""
        self._is_init = True

    @property
    def task_conditioned(self) -> bool:
        return any('task' in t.context_keys for op in tuned_ops(self.backbone) for _, _, t in op.all_tuners())

    def stage_maps(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """The maps the decoders read (see ``taps``), NCHW (B, C_i, H_i, W_i).

        Swin computes on (B, H, W, C) grids and its ``features_only`` wrapper returns them so; we ask timm's
        ``forward_intermediates`` for NCHW and still permute any map that comes back channels-last. For
        ``taps='merged'`` the patch-merging outputs are taken as the backbone computes them (forward hooks), not
        computed a second time.
        """
        merged: list[torch.Tensor] = []
        hooks = [layer.downsample.register_forward_hook(lambda module, args, out: merged.append(out))
                 for layer in self.backbone.layers[1:]] if self.taps == 'merged' else []
        try:
            feats = self.backbone.forward_intermediates(inputs, intermediates_only=True, output_fmt='NCHW')
        finally:
            for hook in hooks:
                hook.remove()
        stage_channels = [info['num_chs'] for info in self.backbone.feature_info]
        out = []
        for f, c in zip(feats, stage_channels):
            if f.shape[1] != c:
                if f.shape[-1] != c:
                    raise ValueError(f'stage map of shape {tuple(f.shape)} has no {c}-channel axis')
                f = f.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
            out.append(f.contiguous())
        if merged:  # patch merging works on (B, H, W, C) grids
            out = [m.permute(0, 3, 1, 2).contiguous() for m in merged] + out[-1:]
        return out

    def forward_tasks(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task at the input size: ``{task: (B, K_task, H, W)}``."""
        size = inputs.shape[-2:]
        if self.task_conditioned:
            feats = {}
            for task in self.tasks:
                with tuner_context(task=task):
                    feats[task] = self.stage_maps(inputs)
        else:
            shared = self.stage_maps(inputs)
            feats = dict.fromkeys(self.tasks, shared)
        return {t: F.interpolate(self.decoders[t](feats[t]), size=size, mode='bilinear', align_corners=False)
                for t in self.tasks}

    def forward(self, inputs: torch.Tensor, data_samples: Mapping[str, torch.Tensor] | None = None,
                mode: str = 'tensor'):
        logits = self.forward_tasks(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return {f'loss_{t}': self.loss_weights[t] * self.task_loss(t, logits[t], data_samples[t])
                    for t in self.tasks}
        if mode == 'predict':
            return self.predictions(logits, data_samples)
        raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}')

    def task_loss(self, task: str, logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Losses of ASTMT / MTLoRA: cross-entropy (segmentation), balanced BCE (saliency), L1 on unit normals,
        L1 on depth; each averaged over labelled pixels (0 where a batch has none)."""
        logits = logits.float()
        if task in SEGMENTATION_TASKS:
            loss = F.cross_entropy(logits, gt, ignore_index=IGNORE_INDEX, reduction='sum')
            return loss / (gt != IGNORE_INDEX).sum().clamp_min(1)
        if task == 'sal':
            valid = gt != IGNORE_INDEX  # (B, H, W)
            target = (gt == 1).float()
            w = self.sal_pos_weight * target + (1 - self.sal_pos_weight) * (1 - target)
            loss = F.binary_cross_entropy_with_logits(logits[:, 0], target, weight=w * valid, reduction='sum')
            return loss / valid.sum().clamp_min(1)
        if task == 'normals':
            valid = (gt.norm(dim=1, keepdim=True) > 0).float()  # (B, 1, H, W)
            err = (F.normalize(logits, dim=1) - gt).abs() * valid
            return err.sum() / (3 * valid.sum()).clamp_min(1)
        valid = (gt > 0).float()  # depth (B, 1, H, W), 0 = no measurement
        return ((logits - gt).abs() * valid).sum() / valid.sum().clamp_min(1)

    @torch.no_grad()
    def predictions(self, logits: dict[str, torch.Tensor], data_samples: Mapping[str, torch.Tensor] | None
                    ) -> list[dict[str, dict[str, torch.Tensor]]]:
        pred = {}
        for t, x in logits.items():
            x = x.float()
            if t in SEGMENTATION_TASKS:
                pred[t] = x.argmax(1)  # (B, H, W)
            elif t == 'sal':
                pred[t] = x.sigmoid()  # (B, 1, H, W) foreground probability
            elif t == 'normals':
                pred[t] = F.normalize(x, dim=1)  # (B, 3, H, W)
            else:
                pred[t] = x  # depth (B, 1, H, W)
        batch = next(iter(pred.values())).shape[0]
        gt = data_samples or {}
        return [{'pred': {t: p[i] for t, p in pred.items()}, 'gt': {t: g[i] for t, g in gt.items()}}
                for i in range(batch)]

    def parameter_counts(self) -> dict[str, int]:
        """The keys of :meth:`ImageClassifier.parameter_counts`, with the task decoders as the head:
        ``trainable`` (backbone side: tuners, shared hypernetworks, selected backbone weights; no decoders),
        ``head`` (trainable decoder parameters), ``trainable_with_head`` and ``total``."""
        tuners = sum(p.numel() for p in self.backbone.parameters() if p.requires_grad)
        decoders = sum(p.numel() for p in self.decoders.parameters() if p.requires_grad)
        return {'trainable': tuners, 'head': decoders, 'trainable_with_head': tuners + decoders,
                'total': sum(p.numel() for p in self.parameters())}
