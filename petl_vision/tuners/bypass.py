"""Res-Tuning-Bypass (Jiang et al., NeurIPS 2023, arXiv 2310.19859): tuners unbound from the backbone.

The frozen block stack runs as usual; a bypass network reads its *detached* features::

    h_0 = x_0.detach()                                  (input of the first block)
    h_i = lateral_i(x_i.detach()) + vertical_i(h_{i-1})  (x_i: output of block i)

and ``h_L`` replaces the stack's output. Lateral and vertical tuners are residual adapters
``z + up(GELU(down(z)))`` (Xavier init, as the authors' ms-swift ``ResAdapter``). No gradient flows
into the backbone, so its activations are never kept for backward: training memory and time drop to
about those of inference plus the small bypass.
"""
import dataclasses

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner


class ResAdapter(nn.Module):
    """``z + up(GELU(down(z)))``; z: (..., C)."""

    def __init__(self, dim: int, hidden: int, zero_init: bool = False):
        super().__init__()
        self.down, self.act, self.up = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        for layer in (self.down, self.up):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=1e-6)
        if zero_init:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.up(self.act(self.down(z)))


@dataclasses.dataclass
class BypassConfig(TunerConfig):
    dim: int = 10  # ResAdapter hidden width ('adapter_length' in ms-swift)
    zero_init_last: bool = False


@register_tuner
class Bypass(Tuner):
    type_name = 'Bypass'
    config_cls = BypassConfig
    placement = 'bypass'
    identity_at_init = False

    def __init__(self, config: BypassConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        self.depth = op.depth
        last = [i == op.depth - 1 and config.zero_init_last for i in range(op.depth)]
        self.lateral = nn.ModuleList(ResAdapter(op.out_features, config.dim, z) for z in last)
        self.vertical = nn.ModuleList(ResAdapter(op.out_features, config.dim, z) for z in last)

    @classmethod
    def default_targets(cls, spec):
        return spec.bypass_ops

    def check_op(self, op: OpInfo) -> None:
        if op.depth is None:
            raise ValueError(f'Bypass needs a sequence of blocks of one width (e.g. ViT "blocks"), not {op.name!r}')

    def run(self, blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """blocks: the frozen stack; x: its input (B, N, C) or (B, H, W, C) -> bypass output, same shape."""
        h = x.detach()
        for block, lateral, vertical in zip(blocks, self.lateral, self.vertical):
            x = block(x)
            h = lateral(x.detach()) + vertical(h)
        return h
