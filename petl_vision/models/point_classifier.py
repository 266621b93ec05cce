"""``PointClassifier``: an mmengine model = point transformer (with its head) + tuner plan.

The image classifier's mechanism with a point backbone: batches from mmengine's ``default_collate`` of the point
datasets are ``inputs`` (B, N, 3) float and ``data_samples`` LongTensor (B,) labels; the preprocessor only moves
and casts them. ``forward`` (modes ``loss`` / ``predict`` / ``tensor``, label smoothing) and
``parameter_counts`` are :class:`ImageClassifier`'s, so the ``Accuracy`` metric, the trainable-only optimizer
constructor and the tuner checkpoint hook work unchanged.
"""
from typing import Any

from mmengine.logging import MMLogger
from mmengine.model import BaseDataPreprocessor, BaseModel

from ..backbones.point_transformer import PointTransformer, load_point_checkpoint
from ..registry import MODELS
from ..tuners import apply_tuners
from .classifier import ImageClassifier
from .config_check import check_init_keys


@MODELS.register_module()
class PointDataPreprocessor(BaseDataPreprocessor):
    """Moves the batch to the model's device and casts the points to float32 (no normalisation: the datasets
    centre/scale clouds where the recipes do)."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        data['inputs'] = data['inputs'].float()  # (B, N, 3)
        return data


def build_point_backbone(pretrained: str | None = None, **kwargs: Any) -> PointTransformer:
    """``PointTransformer(**kwargs)``, then Point-MAE / Point-BERT weights from a path or ``zoo://name``
    (``zoo://point_mae.shapenet``) when ``pretrained`` is set; the report of what loaded goes to the log."""
    backbone = PointTransformer(**kwargs)
    if pretrained:
        path = str(pretrained)
        if path.startswith('zoo://'):
            from ..zoo.scheme import resolve

            path = resolve(path)
        report = load_point_checkpoint(backbone, path)
        MMLogger.get_current_instance().info(f'loaded {pretrained}: {report}')
    return backbone


@MODELS.register_module()
@check_init_keys
class PointClassifier(ImageClassifier):
    """Args:
        backbone: :class:`PointTransformer` kwargs plus ``pretrained`` (a checkpoint path or ``zoo://`` name).
        plan: a preset name or a plan (list of tuner dicts), see :func:`petl_vision.apply_tuners`.
        trainable: parameter globs trained besides the tuners (DAPT/IDPT: ``head``, ``cls_token``, ``cls_pos``).
        label_smoothing: cross-entropy label smoothing (0 in DAPT / IDPT / Point-MAE).
        data_preprocessor: mmengine preprocessor config (default :class:`PointDataPreprocessor`).
    """

    def __init__(self, backbone: dict[str, Any], plan: str | list[dict] = 'linear', trainable=('head',),
                 label_smoothing: float = 0.0, data_preprocessor: dict | None = None, init_cfg=None):
        net = build_point_backbone(**backbone)
        preprocessor = MODELS.build({'type': 'PointDataPreprocessor', **(data_preprocessor or {})})
        # ImageClassifier.__init__ builds a timm backbone and an image preprocessor; the rest of it is these lines
        BaseModel.__init__(self, data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.backbone = apply_tuners(net, plan, trainable=tuple(trainable))
        self.label_smoothing = label_smoothing
