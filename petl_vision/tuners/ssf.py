"""SSF (Lian et al. 2022, arXiv 2210.08823): learned per-channel scale and shift after an op,
``y = gamma * O(x) + beta``; re-parameterised into the preceding Linear/Conv/norm for inference.

Initialisation as the official code: gamma ~ N(1, 0.02), beta ~ N(0, 0.02) (so the tuned model is
close to, not equal to, the frozen one at initialisation).
"""
import dataclasses

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner
from .task_vectors import TaskVector, check_vector


@dataclasses.dataclass
class SSFConfig(TunerConfig):
    init_std: float = 0.02


@register_tuner
class SSF(Tuner):
    type_name = 'SSF'
    config_cls = SSFConfig
    placement = 'sequential'
    identity_at_init = False

    def __init__(self, config: SSFConfig, op: OpInfo):
        super().__init__(config, op)
        self.scale = nn.Parameter(torch.empty(op.out_features).normal_(1.0, config.init_std))
        self.shift = nn.Parameter(torch.empty(op.out_features).normal_(0.0, config.init_std))
        self.channel_dim = op.channel_dim

    @classmethod
    def default_targets(cls, spec):
        from .presets import ssf_targets
        return ssf_targets(spec)

    def _view(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        if self.channel_dim == -1:
            return t
        shape = [1] * ndim
        shape[self.channel_dim] = -1
        return t.view(shape)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: O's output, channels at ``channel_dim`` ((..., C) or (B, C, ...))."""
        return y * self._view(self.scale, y.ndim).to(y.dtype) + self._view(self.shift, y.ndim).to(y.dtype)

    def mergeable_reason(self, base: nn.Module) -> str | None:
        if isinstance(base, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.LayerNorm)):
            return None if getattr(base, 'weight', None) is not None else 'the norm has no affine weight'
        return f'SSF merges into a Linear, Conv or LayerNorm, not {type(base).__name__}'

    def merge(self, base: nn.Module) -> None:
        w = self.scale.view(-1, *[1] * (base.weight.ndim - 1))
        base.weight.mul_(w)
        if base.bias is None:
            base.bias = nn.Parameter(self.shift.detach().clone(), requires_grad=False)
        else:
            base.bias.mul_(self.scale).add_(self.shift)

    def task_vector(self) -> TaskVector:
        """``(scale - 1, shift)``: the change from the identity transform."""
        return {'scale': self.scale.detach() - 1, 'shift': self.shift.detach().clone()}

    def load_task_vector(self, vector: TaskVector) -> None:
        check_vector('SSF', {'scale': self.scale.shape, 'shift': self.shift.shape}, vector)
        with torch.no_grad():
            self.scale.copy_(vector['scale'] + 1)
            self.shift.copy_(vector['shift'])
