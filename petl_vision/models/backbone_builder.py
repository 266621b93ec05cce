"""Build a timm backbone by name and load its pretrained weights from a timm name, a file or the zoo."""
import sys
from typing import Any

import timm
from mmengine.logging import MMLogger
from mmengine.runner import CheckpointLoader
from torch import nn

from .config_check import explain_backbone_error


def build_timm_backbone(model: str, pretrained: str | bool | None = None, **kwargs: Any) -> nn.Module:
    """``timm.create_model(model, **kwargs)`` then pretrained weights:

    - ``None``/``False``: random init;
    - ``True`` or ``'timm'``: timm's own pretrained weights for ``model`` (Hugging Face hub; needs network
      or a filled HF cache);
    - a path, URL or ``zoo://name``: loaded through mmengine's checkpoint loader (``.npz`` files: timm's
      ``load_pretrained``), with the head dropped where its shape differs.
    """
    use_timm = pretrained is True or pretrained == 'timm'
    try:
        backbone = timm.create_model(model, pretrained=use_timm, **kwargs)
    except TypeError as err:
        explained = explain_backbone_error(err, model)
        if explained is None:
            raise
        raise explained from None
    if pretrained and not use_timm:
        load_backbone_weights(backbone, str(pretrained))
    return backbone


def load_backbone_weights(backbone: nn.Module, source: str) -> None:
    logger = MMLogger.get_current_instance()
    if source.endswith('.npz') and hasattr(backbone, 'load_pretrained'):
        backbone.load_pretrained(source)
        return
    ckpt = CheckpointLoader.load_checkpoint(source, map_location='cpu')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt)) if isinstance(ckpt, dict) else ckpt
    state = {k.removeprefix('backbone.').removeprefix('module.'): v for k, v in state.items()}
    filter_fn = getattr(sys.modules[type(backbone).__module__], 'checkpoint_filter_fn', None)
    if filter_fn is not None:
        state = filter_fn(state, backbone)
    own = backbone.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    head_mismatch = [k for k in mismatched if k.startswith('head')]
    if set(mismatched) - set(head_mismatch):
        bad = sorted(set(mismatched) - set(head_mismatch))[:5]
        raise ValueError(f'{source} does not fit {type(backbone).__name__}: shape mismatch for {bad}; '
                         'is it a checkpoint for another backbone size?')
    for k in head_mismatch:
        state.pop(k)
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    body = [k for k in own if not k.startswith('head')]
    missing_body = [k for k in missing if not k.startswith('head')]
    if len(missing_body) > len(body) // 2:
        raise ValueError(f'{source} matches almost none of {type(backbone).__name__}\'s weights '
                         f'({len(missing_body)} of {len(body)} missing, e.g. {missing_body[:3]}); '
                         'it is a checkpoint for another backbone')
    logger.info(f'loaded {source}: {len(own) - len(missing)} tensors; missing {missing}; unexpected {unexpected}')


def pretrained_mean_std(backbone: nn.Module) -> tuple[list[float], list[float]]:
    """Normalisation of the backbone's pretrained weights in 0-255 pixel units (ImageNet's by default)."""
    cfg = getattr(backbone, 'pretrained_cfg', None) or {}
    mean = cfg.get('mean', (0.485, 0.456, 0.406))
    std = cfg.get('std', (0.229, 0.224, 0.225))
    return [255 * m for m in mean], [255 * s for s in std]

