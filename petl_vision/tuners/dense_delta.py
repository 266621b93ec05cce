"""DenseDelta: ``O(x) + x dW^T`` on a Linear, a dense weight update held as it is.

What a weight-space combination of LoRA adapters becomes (``petl_vision.composition``): the weighted sum of their
``dW = s B A`` has rank up to the sum of their ranks, so a LoRA of one of their ranks cannot hold it, and averaging
A and B separately is wrong (cross terms ``B_i A_j``). DenseDelta holds ``dW`` exactly, merges exactly
(``W += dW``) and shares LoRA's task space, so it mixes with LoRA adapters of any rank. Zero-initialised.
"""
import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner
from .task_vectors import DENSE_DELTA, TaskVector, check_vector


@dataclasses.dataclass
class DenseDeltaConfig(TunerConfig):
    pass


@register_tuner
class DenseDelta(Tuner):
    type_name = 'DenseDelta'
    config_cls = DenseDeltaConfig
    placement = 'parallel'

    def __init__(self, config: DenseDeltaConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        self.weight = nn.Parameter(torch.zeros(op.out_features, op.in_features))  # (out, in)

    @classmethod
    def default_targets(cls, spec):
        raise ValueError('DenseDelta needs explicit targets (combine_adapters builds it from LoRA task vectors)')

    @classmethod
    def example_plan(cls, spec):
        return [{'type': cls.type_name, 'targets': f'{spec.blocks}.attn.qkv'}]

    def check_op(self, op: OpInfo) -> None:
        if op.kind != 'linear':
            raise ValueError(f'DenseDelta needs a Linear op, but {op.name!r} is a {op.kind}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in) -> update (..., out)."""
        return F.linear(x, self.weight.to(x.dtype))

    def mergeable_reason(self, base: nn.Module) -> str | None:
        return None

    def merge(self, base: nn.Linear) -> None:
        base.weight += self.weight.to(base.weight.dtype)

    def task_vector(self) -> TaskVector:
        return {'delta_weight': self.weight.detach().clone()}

    def task_space(self) -> str:
        return DENSE_DELTA

    def load_task_vector(self, vector: TaskVector) -> None:
        check_vector('DenseDelta', {'delta_weight': self.weight.shape}, vector)
        with torch.no_grad():
            self.weight.copy_(vector['delta_weight'])
