"""Res-Tuning-Bypass (Jiang et al., NeurIPS 2023, arXiv 2310.19859): tuners unbound from the backbone.

The frozen block stack runs as usual; a bypass network reads its *detached* features::

    h_0 = x_0.detach()                                  (input of the first block)
    h_i = lateral_i(x_i.detach()) + vertical_i(h_{i-1})  (x_i: output of block i)

and ``h_L`` replaces the stack's output. One ``Bypass`` tuner sits on each block (a *side* placement): block
i's tuned op computes h_i and hands it to block i + 1 with the activations (:mod:`.carry`); the last block returns
h_L. No tuner wraps the stack, so code that iterates the blocks (checkpointing, ``forward_intermediates``) runs the
bypass too; the blocks before the last give their frozen outputs, as in the method. Lateral and vertical
tuners are residual adapters
``z + up(GELU(down(z)))`` (Xavier init, as the authors' ms-swift ``ResAdapter``). No gradient flows
into the backbone, so its activations are never kept for backward: training memory and time drop to
about those of inference plus the small bypass.
"""
import dataclasses

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .layers import BottleneckMLP
from .placement import Placement
from .registry import register_tuner
from .task_vectors import TaskVector, load_parameter_vector, parameter_vector


class ResAdapter(BottleneckMLP, nn.Module):
    """``z + up(GELU(down(z)))``; z: (..., C)."""

    def __init__(self, dim: int, hidden: int, zero_init: bool = False):
        super().__init__()
        self.build_bottleneck(dim, hidden, dim, nn.GELU())
        for layer in (self.down, self.up):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=1e-6)
        if zero_init:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.bottleneck(z)


@dataclasses.dataclass
class BypassConfig(TunerConfig):
    dim: int = 10  # ResAdapter hidden width ('adapter_length' in ms-swift)
    zero_init_last: bool = False


@register_tuner
class Bypass(Tuner):
    type_name = 'Bypass'
    config_cls = BypassConfig
    placement = Placement.SIDE
    identity_at_init = False

    def __init__(self, config: BypassConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        zero = config.zero_init_last and self.last_in_chain
        self.lateral = ResAdapter(op.out_features, config.dim, zero)
        self.vertical = ResAdapter(op.out_features, config.dim, zero)

    @classmethod
    def default_targets(cls, spec):
        return spec.bypass_ops

    def check_op(self, op: OpInfo) -> None:
        if op.kind != 'module' or op.in_features != op.out_features:
            raise ValueError(f'Bypass follows a chain of same-width blocks (e.g. ViT "blocks.*"); {op.name!r} is a '
                             f'{op.kind} ({op.in_features} -> {op.out_features})')

    def side(self, x: torch.Tensor, y: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """x, y: this block's input and output, (B, N, C) or (B, H, W, C); prev: h_{i-1} (None on the first block,
        which starts from its detached input) -> h_i, same shape."""
        h = x.detach() if prev is None else prev
        return self.lateral(y.detach()) + self.vertical(h)

    def task_vector(self) -> TaskVector:
        """Its parameters (lateral and vertical adapters)."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)
