"""Light multi-scale decoders for multi-task dense prediction, one per task.

``MultiScaleHead`` is the HRNet-style head the multi-task dense PETL papers put on a hierarchical backbone
(Vandenhende et al.'s ``HighResolutionHead`` as MTLoRA uses it for the Polyhistor benchmark): every stage's map is
reduced by a 1x1 convolution (to the HRNet-W18 widths 18 / 36 / 72 / 144 by default), upsampled to the finest
stage, concatenated, and mapped to the task's outputs by ``1x1 conv (expand x) - BN - ReLU - 1x1 conv``.
"""
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import MODELS
from .config_check import check_init_keys


@MODELS.register_module()
@check_init_keys
class MultiScaleHead(nn.Module):
    """Args:
        in_channels: channels of the backbone's stage maps, finest first (Swin-T: 96, 192, 384, 768).
        num_outputs: output channels of the task (classes, 1 for saliency / depth, 3 for normals).
        channels: 1x1 reduction of each stage before the fusion (None: no reduction).
        expand: width of the fusion layer as a multiple of the concatenated channels.
    """

    def __init__(self, in_channels: Sequence[int], num_outputs: int, channels: Sequence[int] | None = (18, 36, 72, 144),
                 expand: int = 4):
        super().__init__()
        reduce = channels is not None
        channels = list(channels if reduce else in_channels)
        if len(channels) != len(in_channels):
            raise ValueError(f'MultiScaleHead: {len(in_channels)} stages but {len(channels)} reduction widths')
        self.reduce = nn.ModuleList(nn.Conv2d(c_in, c, 1, bias=False) if reduce else nn.Identity()
                                    for c_in, c in zip(in_channels, channels))
        fused = sum(channels)
        self.fuse = nn.Sequential(nn.Conv2d(fused, fused * expand, 1), nn.BatchNorm2d(fused * expand), nn.ReLU(),
                                  nn.Conv2d(fused * expand, num_outputs, 1))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """feats: stage maps (B, C_i, H_i, W_i), finest first -> (B, num_outputs, H_0, W_0)."""
        size = feats[0].shape[-2:]
        maps = [F.interpolate(r(f), size=size, mode='bilinear', align_corners=False) if i else r(f)
                for i, (r, f) in enumerate(zip(self.reduce, feats))]
        return self.fuse(torch.cat(maps, dim=1))  # (B, sum C, H_0, W_0) -> (B, K, H_0, W_0)
