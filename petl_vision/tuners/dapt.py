"""DAPT (Zhou et al., CVPR 2024, "Dynamic Adapter Meets Prompt Tuning"): a dynamic adapter parallel to each
MLP and an internal prompt built from its output after each block.

- ``DynamicAdapter`` (parallel on ``blocks.*.mlp``, same input as the MLP, ``z = norm2(h)``)::

      U(z) = ReLU(w . LN(z) + b) * up(drop(GELU(down(LN(z)))))      (per-token scale, up zero-init)

- ``InternalPrompt`` (sequential on ``blocks.*``): after block i a token
  ``p_i = gamma * mean_tokens(GELU(U_i)) + beta`` is inserted right after the prefix (class) token, so the
  sequence grows by one token per block. The prompt reads its block's adapter output, found at attach
  time by name (``source`` tuner on ``<block>.<source_op>``).

The official code also trains SSF-style scale/shift ("tfts") after norm1, norm2, qkv, proj, fc1, fc2, the
tokenizer and the final norm: that is the ``SSF`` tuner in the same plan (``dapt`` preset with ``ssf=True``).
"""
import dataclasses
import math

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner


@dataclasses.dataclass
class DynamicAdapterConfig(TunerConfig):
    dim: int = 64  # bottleneck rank (64 on ScanObjectNN, 72 on ModelNet40)
    dropout: float = 0.0


@register_tuner
class DynamicAdapter(Tuner):
    type_name = 'DynamicAdapter'
    config_cls = DynamicAdapterConfig
    placement = 'parallel'

    def __init__(self, config: DynamicAdapterConfig, op: OpInfo):
        super().__init__(config, op)
        d = op.in_features
        self.norm = nn.LayerNorm(d)
        self.scale = nn.Linear(d, 1)
        self.down = nn.Linear(d, config.dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.up = nn.Linear(config.dim, d)
        for layer in (self.down, self.scale):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.last_output: torch.Tensor | None = None

    @classmethod
    def default_targets(cls, spec):
        return f'{spec.blocks}.mlp'

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, N, C) -> per-token-scaled update (B, N, C); kept for the block's internal prompt."""
        z = self.norm(z)
        out = self.up(self.drop(self.act(self.down(z)))) * torch.relu(self.scale(z))  # (B, N, C) * (B, N, 1)
        self.last_output = out
        return out


@dataclasses.dataclass
class InternalPromptConfig(TunerConfig):
    source: str = 'dynamicadapter'  # name of the DynamicAdapter in the plan
    source_op: str = 'mlp'  # where it sits, relative to the block


@register_tuner
class InternalPrompt(Tuner):
    type_name = 'InternalPrompt'
    config_cls = InternalPromptConfig
    placement = 'sequential'

    def __init__(self, config: InternalPromptConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        self.num_prefix = op.spec.num_prefix_tokens
        self.gamma = nn.Parameter(torch.empty(op.out_features).normal_(1.0, 0.02))
        self.beta = nn.Parameter(torch.empty(op.out_features).normal_(0.0, 0.02))
        self._source: list[DynamicAdapter] = []  # a list, so the adapter is not registered twice as a submodule

    identity_at_init = False  # the sequence gains a token per block

    @classmethod
    def default_targets(cls, spec):
        return spec.blocks

    @classmethod
    def example_plan(cls, spec):
        if spec.name != 'point':
            return None  # only the point transformer's head pools the prompts (timm's ViT reads the class token)
        return [{'type': 'DynamicAdapter', 'targets': f'{spec.blocks}.mlp'},
                {'type': 'InternalPrompt', 'targets': spec.blocks}]

    def check_op(self, op: OpInfo) -> None:
        if op.kind != 'module' or op.spec.token_ops is None:
            raise ValueError(f'InternalPrompt needs a transformer block on a token sequence; {op.name!r} '
                             f'({op.spec.name}) is not one')

    def bind(self, find_tuner) -> None:
        path = f'{self.op_name}.{self.config.source_op}'
        tuner = find_tuner(path, self.config.source)
        if not isinstance(tuner, DynamicAdapter):
            raise ValueError(f'InternalPrompt on {self.op_name!r} needs a DynamicAdapter named '
                             f'{self.config.source!r} on {path!r}; put it earlier in the plan')
        self._source = [tuner]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: block output (B, N, C) -> (B, N + 1, C) with the prompt after the prefix tokens."""
        adapter = self._source[0]
        if adapter.last_output is None:
            raise RuntimeError(f'the DynamicAdapter of {self.op_name!r} did not run in this forward pass')
        prompt = torch.nn.functional.gelu(adapter.last_output).mean(dim=1, keepdim=True)  # (B, 1, C)
        adapter.last_output = None
        prompt = prompt * self.gamma + self.beta
        n = self.num_prefix
        return torch.cat([y[:, :n], prompt.to(y.dtype), y[:, n:]], dim=1)
