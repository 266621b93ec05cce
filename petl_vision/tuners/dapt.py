"""DAPT (Zhou et al., CVPR 2024, "Dynamic Adapter Meets Prompt Tuning"): a dynamic adapter parallel to each
MLP and an internal prompt built from its output after each block.

- ``DynamicAdapter`` (parallel on ``blocks.*.mlp``, same input as the MLP, ``z = norm2(h)``)::

      U(z) = ReLU(w . LN(z) + b) * up(drop(GELU(down(LN(z)))))      (per-token scale, up zero-init)

- ``InternalPrompt`` (sequential on ``blocks.*``): after block i a token
  ``p_i = gamma * mean_tokens(GELU(U_i)) + beta`` is inserted right after the prefix (class) token, so the
  sequence grows by one token per block. The prompt reads its block's adapter output (``source`` tuner on
  ``<block>.<source_op>``, checked at attach time) from the per-call scratch space of the block's call
  (:func:`~petl_vision.tuners.context.scratch`), so no tensor is kept on a module between calls.

The official code also trains SSF-style scale/shift ("tfts") after norm1, norm2, qkv, proj, fc1, fc2, the
tokenizer and the final norm: that is the ``SSF`` tuner in the same plan (:func:`dapt_plan` with ``ssf=True``).

Trainable counts on Point-MAE's ViT-S (384 wide, 12 blocks), rank 64 (checked in
``tests/models/test_point_classifier.py``): per block adapter 50,753 + prompt scale/shift 768, with SSF another
8,448; stem and final norm SSF 1,536. With the class token/position (768) and the 3C-input head (365,839 on
ScanObjectNN's 15 classes): 1,087,771 with SSF (the official count), 984,859 without. See docs/methods/dapt.md.
"""
import dataclasses
import math

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .context import scratch
from .layers import BottleneckMLP, insert_tokens
from .registry import register_tuner
from .task_vectors import TaskVector, load_parameter_vector, parameter_vector



@dataclasses.dataclass
class DynamicAdapterConfig(TunerConfig):
    dim: int = 64  # bottleneck rank (64 on ScanObjectNN, 72 on ModelNet40)
    dropout: float = 0.0


@register_tuner
class DynamicAdapter(BottleneckMLP, Tuner):
    type_name = 'DynamicAdapter'
    config_cls = DynamicAdapterConfig
    placement = 'parallel'

    def __init__(self, config: DynamicAdapterConfig, op: OpInfo):
        super().__init__(config, op)
        d = op.in_features
        self.norm = nn.LayerNorm(d)
        self.scale = nn.Linear(d, 1)
        self.build_bottleneck(d, config.dim, d, nn.GELU(), config.dropout)
        for layer in (self.down, self.scale):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    @property
    def scratch_key(self) -> tuple[str, str, str]:
        return self.op_name, self.adapter, self.tuner_name

    @classmethod
    def default_targets(cls, spec):
        return f'{spec.blocks}.mlp'

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, N, C) -> per-token-scaled update (B, N, C); left in the call's scratch for the internal prompt."""
        z = self.norm(z)
        out = self.bottleneck(z) * torch.relu(self.scale(z))  # (B, N, C) * (B, N, 1)
        scratch()[self.scratch_key] = out
        return out

    def task_vector(self) -> TaskVector:
        """Its parameters (norm, per-token scale, bottleneck)."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


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
        self._source_key: tuple[str, str, str] | None = None

    identity_at_init = False  # the sequence gains a token per block
    keeps_shape = False

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
        self._source_key = tuner.scratch_key

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: block output (B, N, C) -> (B, N + 1, C) with the prompt after the prefix tokens."""
        adapter_out = scratch().pop(self._source_key, None)
        if adapter_out is None:
            raise RuntimeError(f'the DynamicAdapter {self._source_key[2]!r} of {self.op_name!r} did not run in this '
                               "call of the block (is it switched off?); the internal prompt is built from its output")
        prompt = torch.nn.functional.gelu(adapter_out).mean(dim=1, keepdim=True)  # (B, 1, C)
        prompt = prompt * self.gamma + self.beta
        return insert_tokens(y, [prompt.to(y.dtype)], self.num_prefix)

    def task_vector(self) -> TaskVector:
        """Its parameters (gamma, beta)."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


# The official code's "tfts" scale/shift, by our op names (``ssf_targets`` of the point transformer's descriptor).
DAPT_SSF_TARGETS = ['encoder', 'blocks.*.norm1', 'blocks.*.attn.qkv', 'blocks.*.attn.proj', 'blocks.*.norm2',
                    'blocks.*.mlp.fc1', 'blocks.*.mlp.fc2', 'norm']
# What DAPT trains besides the tuners (the official optimizer keeps names containing ``cls``).
DAPT_TRAINABLE = ('head', 'cls_token', 'cls_pos')


def dapt_plan(rank: int = 64, dropout: float = 0.0, ssf: bool = True) -> list[dict]:
    """DAPT's plan for a :class:`~petl_vision.backbones.point_transformer.PointTransformer` built with
    ``pos_every_block=False`` (positions once, as DAPT) and ``prompt_pool='mean'`` (its ScanObjectNN head).

    Args:
        rank: adapter bottleneck (64 on ScanObjectNN, 72 on ModelNet40).
        dropout: adapter dropout (0.5 OBJ_BG, 0.2 PB_T50_RS, 0 OBJ_ONLY and ModelNet40).
        ssf: add the official code's SSF scale/shift (:data:`DAPT_SSF_TARGETS`).

    Use with ``apply_tuners(model, dapt_plan(), trainable=DAPT_TRAINABLE)``.
    """
    plan = [{'type': 'DynamicAdapter', 'targets': 'blocks.*.mlp', 'dim': rank, 'dropout': dropout},
            {'type': 'InternalPrompt', 'targets': 'blocks.*'}]
    if ssf:
        plan.append({'type': 'SSF', 'targets': list(DAPT_SSF_TARGETS)})
    return plan
