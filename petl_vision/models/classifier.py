"""``ImageClassifier``: an mmengine model = timm backbone (with its head) + tuner plan.

Batches (mmengine's ``default_collate`` of the datasets): ``inputs`` (B, 3, H, W) uint8,
``data_samples`` LongTensor (B,) labels. ``mode='predict'`` returns one dict per sample,
``{'pred_score': (num_classes,) softmax, 'pred_label': int, 'gt_label': int}``, which the
``Accuracy`` metric reads.
"""
from typing import Any

import torch
from mmengine.model import BaseModel
from torch.nn import functional as F

from ..registry import MODELS
from ..tuners import apply_tuners, count_parameters
from .backbone_builder import build_timm_backbone, pretrained_mean_std
from .config_check import check_init_keys


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Raise ``ValueError`` naming ``num_classes`` and the labels' range when a label has no output of the head
    (cross-entropy would fail with "Target 6 is out of bounds", or a device-side assert on CUDA)."""
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f'labels of this batch span {low}..{high} but the head has num_classes={num_classes} '
                         f'outputs (labels 0..{num_classes - 1}): set num_classes to the number of classes of the '
                         'data (--cfg-options num_classes=N where the dataset base declares it, else '
                         'model.backbone.num_classes=N)')


@MODELS.register_module()
@check_init_keys
class ImageClassifier(BaseModel):
    """Args:
        backbone: kwargs of :func:`build_timm_backbone` (``model``, ``pretrained``, ``num_classes``, timm kwargs).
        plan: a preset name or a plan (list of tuner dicts), see :func:`petl_vision.apply_tuners`.
        trainable: parameter globs trained besides the tuners (default: the classification head).
        label_smoothing: cross-entropy label smoothing (VTAB recipes use 0.1).
        data_preprocessor: mmengine preprocessor config; mean/std default to the backbone's pretrained ones.
    """

    def __init__(self, backbone: dict[str, Any], plan: str | list[dict] = 'linear', trainable=('head',),
                 label_smoothing: float = 0.0, data_preprocessor: dict | None = None, init_cfg=None):
        if 'num_classes' in backbone and backbone['num_classes'] is None:
            raise ValueError('model.backbone.num_classes is None: set it to the number of classes of the data '
                             '(--cfg-options num_classes=N, e.g. the number of class folders of an ImageFolder)')
        net = build_timm_backbone(**backbone)
        mean, std = pretrained_mean_std(net)
        preprocessor = {'type': 'ImgDataPreprocessor', 'mean': mean, 'std': std, **(data_preprocessor or {})}
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.backbone = apply_tuners(net, plan, trainable=tuple(trainable))
        self.label_smoothing = label_smoothing

    def init_weights(self) -> None:
        """Keep the weights set at construction (pretrained backbone, tuners' own initialisation).

        mmengine's Runner calls ``init_weights`` on the model, and ``BaseModule.init_weights`` recurses into every
        child that has one: timm's ``VisionTransformer.init_weights`` would redraw the pretrained weights.
        """
        self._is_init = True

    def forward(self, inputs: torch.Tensor, data_samples: torch.Tensor | None = None, mode: str = 'tensor',
                task: list[str] | None = None):
        """``task``: the per-sample task names multi-task data packs (one head here: a single task is ignored)."""
        if task is not None and len(set(task)) > 1:
            raise ValueError(f'this batch mixes tasks {sorted(set(task))} but ImageClassifier has one head; train '
                             'each task alone or use a multi-task model (one adapter and head per task)')
        logits = self.backbone(inputs)  # (B, num_classes)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            check_labels(data_samples, logits.shape[-1])
            return {'loss': F.cross_entropy(logits, data_samples, label_smoothing=self.label_smoothing)}
        if mode == 'predict':
            scores = logits.float().softmax(-1)
            if data_samples is not None:
                check_labels(data_samples, logits.shape[-1])
            labels = data_samples.tolist() if data_samples is not None else [None] * len(scores)
            return [{'pred_score': s, 'pred_label': int(s.argmax()), 'gt_label': y} for s, y in zip(scores, labels)]
        raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}')

    def parameter_counts(self) -> dict[str, int]:
        """See :func:`classifier_parameter_counts`."""
        return classifier_parameter_counts(self.backbone)


def classifier_parameter_counts(backbone: torch.nn.Module) -> dict[str, int]:
    """Counts of a (tuned) model with a ``get_classifier()`` head: ``trainable`` (tuners etc., without the head),
    ``head`` (all head parameters), ``trainable_with_head`` and ``total``."""
    head = list(backbone.get_classifier().parameters())
    head_ids = {id(p) for p in head}
    counts = count_parameters(backbone)
    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad and id(p) not in head_ids)
    return {'trainable': trainable, 'head': sum(p.numel() for p in head),
            'trainable_with_head': counts['trainable'], 'total': counts['total']}
