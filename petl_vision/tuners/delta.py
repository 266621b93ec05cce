"""Trained deltas of backbone tensors, as tuners: what lets several adapters train "the same" backbone tensors.

A parameter selection (BitFit, ``trainable=('head',)``) trains the backbone's own tensors, so only one adapter can
hold it. In a named adapter (``add_adapter``) the same training becomes a zero-initialised delta beside the frozen
tensor, with the same parameter count and the same gradient:

- ``BiasDelta`` (BitFit per adapter): ``y = O(x) + db`` on every op with a bias (Linear, conv, LayerNorm);
- ``LinearDelta`` (a trained Linear per adapter, e.g. its own head): ``y = O(x) + x dW^T + db``.

Both merge exactly (the delta is added to the frozen tensor).
"""
import dataclasses

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner
from .task_vectors import TaskVector, load_parameter_vector, parameter_vector


@dataclasses.dataclass
class DeltaConfig(TunerConfig):
    pass


class _Delta(Tuner):
    config_cls = DeltaConfig

    @classmethod
    def default_targets(cls, spec):
        raise ValueError(f'{cls.type_name} needs explicit targets (add_adapter builds them from BitFit and trainable)')

    def mergeable_reason(self, base: nn.Module) -> str | None:
        return None

    def task_vector(self) -> TaskVector:
        """The deltas themselves."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


@register_tuner
class BiasDelta(_Delta):
    """``O(x) + db``: BitFit's bias training as a delta (``db`` starts at zero)."""

    type_name = 'BiasDelta'

    def __init__(self, config: DeltaConfig, op: OpInfo):
        super().__init__(config, op)
        self.channel_dim = op.channel_dim
        self.bias = nn.Parameter(torch.zeros(op.out_features))

    @classmethod
    def example_plan(cls, spec):
        return [{'type': cls.type_name, 'targets': f'{spec.blocks}.mlp.fc1'}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The update broadcast over O's output; channels at ``channel_dim``."""
        b = self.bias.to(x.dtype)
        return b.view(-1, *[1] * (x.ndim - 2)) if self.channel_dim == 1 else b  # (C, 1, 1) for NCHW, else (C,)

    def merge(self, base: nn.Module) -> None:
        base.bias += self.bias.to(base.bias.dtype)


@register_tuner
class LinearDelta(_Delta):
    """``O(x) + x dW^T + db`` on a Linear: the op trained per adapter (a head), ``dW`` and ``db`` from zero."""

    type_name = 'LinearDelta'

    def __init__(self, config: DeltaConfig, op: OpInfo):
        super().__init__(config, op)
        if op.kind != 'linear':
            raise ValueError(f'only Linear layers can be trained per adapter (e.g. the head); {op.name!r} is a '
                             f'{op.kind}: use SSF or BitFit for norms')
        self.weight = nn.Parameter(torch.zeros(op.out_features, op.in_features))
        self.bias = nn.Parameter(torch.zeros(op.out_features))

    @classmethod
    def example_plan(cls, spec):
        return [{'type': cls.type_name, 'targets': f'{spec.blocks}.mlp.fc2'}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def merge(self, base: nn.Linear) -> None:
        base.weight += self.weight.to(base.weight.dtype)
        if base.bias is None:
            base.bias = nn.Parameter(self.bias.detach().clone(), requires_grad=False)
        else:
            base.bias += self.bias.to(base.bias.dtype)
