"""Bottleneck adapters: ``U(x) = s * up(drop(act(down(x))))`` (up-projection zero-initialised).

- ``sequential`` placement: ``O(x) + U(O(x))`` — Houlsby et al. 2019 (after attention and MLP) and
  Pfeiffer et al. 2021 (after the MLP);
- ``parallel`` placement: ``O(x) + U(x)`` on O's input — AdaptFormer (Chen et al. 2022, parallel to the
  MLP, s = 0.1) and U-Tuning's parallel tuners on MHA, FFN or a whole block.

With ``act='identity'`` the adapter is linear (RepAdapter-style) and merges into a Linear op.
"""
import dataclasses
import math

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .layers import BottleneckMLP
from .registry import register_tuner
from .task_vectors import TaskVector, load_parameter_vector, parameter_vector

ACTIVATIONS = {'relu': nn.ReLU, 'gelu': nn.GELU, 'swish': nn.SiLU, 'identity': nn.Identity}


@dataclasses.dataclass
class AdapterConfig(TunerConfig):
    dim: int = 8
    placement: str = 'sequential'
    act: str = 'relu'
    scale: float = 1.0
    dropout: float = 0.0

    def __post_init__(self):
        self.check_choice('placement', ('parallel', 'sequential'))
        self.check_choice('act', tuple(ACTIVATIONS))
        if self.dim < 1:
            raise ValueError(f'adapter dim must be >= 1, got {self.dim}')


@register_tuner
class Adapter(BottleneckMLP, Tuner):
    type_name = 'Adapter'
    config_cls = AdapterConfig

    def __init__(self, config: AdapterConfig, op: OpInfo):
        super().__init__(config, op)
        width = op.out_features if config.placement == 'sequential' else op.in_features
        if config.placement == 'parallel' and op.in_features != op.out_features:
            raise ValueError(f'a parallel adapter on {op.name!r} needs equal input and output widths '
                             f'({op.in_features} != {op.out_features}); use placement="sequential"')
        self.build_bottleneck(width, config.dim, op.out_features, ACTIVATIONS[config.act](), config.dropout)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.channel_dim = op.channel_dim

    @classmethod
    def default_targets(cls, spec):
        return f'{spec.blocks}.mlp'

    def update(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(x) * self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) channels last."""
        if self.placement == 'parallel':
            return self.update(x)
        return x + self.update(x)

    def mergeable_reason(self, base: nn.Module) -> str | None:
        if self.config.act != 'identity':
            return f'Adapter with a {self.config.act} bottleneck is non-linear'
        if not isinstance(base, nn.Linear):
            return f'a linear Adapter merges only into a Linear op, not {type(base).__name__}'
        return None

    def _affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The adapter update as M x + c: M (out, in), c (out,)."""
        s = self.config.scale
        return s * self.up.weight @ self.down.weight, s * (self.up.weight @ self.down.bias + self.up.bias)

    def merge(self, base: nn.Linear) -> None:
        M, c = self._affine()
        if self.placement == 'parallel':  # W x + b + M x + c
            base.weight += M
            new_bias = c
        else:  # (I + M)(W x + b) + c
            base.weight.copy_(base.weight + M @ base.weight)
            new_bias = c + (M @ base.bias if base.bias is not None else 0)
        _add_bias(base, new_bias)

    def task_vector(self) -> TaskVector:
        """Its parameters (down, up: weights and biases)."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


def _add_bias(base: nn.Linear, extra: torch.Tensor) -> None:
    if base.bias is None:
        base.bias = nn.Parameter(extra.detach().clone(), requires_grad=False)
    else:
        base.bias += extra


@dataclasses.dataclass
class AdaptFormerConfig(AdapterConfig):
    placement: str = 'parallel'
    scale: float = 0.1


@register_tuner
class AdaptFormer(Adapter):
    """AdaptFormer: the bottleneck adapter parallel to the MLP with scale 0.1 (Chen et al. 2022)."""

    type_name = 'AdaptFormer'
    config_cls = AdaptFormerConfig
