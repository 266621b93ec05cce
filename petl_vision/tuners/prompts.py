"""Prompt tuners: VPT (Jia et al. 2022) and prefix tuning (Li & Liang 2021).

VPT learns tokens P that join the sequence of O (``O([P; x])``, dropped after O): on every ``blocks.i`` it is
VPT-deep. VPT-shallow (``shallow=True`` on ``blocks.*``) learns P for the first block only and carries the
block's output at the prompt positions into the next block (:mod:`.carry`), so the prompt flows through the
whole stack as in the paper while no block's visible output changes length (gradient checkpointing,
``forward_intermediates`` and attention masks see the tuned model). On an attention op (Swin's windowed
attention) P is projected to keys/values by the frozen qkv and every window attends to it.

Prefix tuning learns keys and values directly. Attention over ``[K_pre; K]`` equals U-Tuning's
parallel form ``(1 - l) Attn(Q, K, V) + l Attn(Q, K_pre, V_pre)`` with l the softmax mass on the
prefix (He et al. 2022); we compute the concatenated form, which needs one attention call.
"""
import dataclasses
import math
from functools import reduce
from operator import mul

import torch
from torch import nn

from .base import OpInfo, PromptTuner
from .config import TunerConfig
from .registry import register_tuner
from .task_vectors import TaskVector, check_vector, load_parameter_vector, parameter_vector


@dataclasses.dataclass
class VPTConfig(TunerConfig):
    num_tokens: int = 10
    dropout: float = 0.0
    shallow: bool = False  # prompt only the first matched block and carry it through the others

    def __post_init__(self):
        if self.num_tokens < 1:
            raise ValueError(f'VPT num_tokens must be >= 1, got {self.num_tokens}')


@register_tuner
class VPT(PromptTuner):
    type_name = 'VPT'
    config_cls = VPTConfig

    def __init__(self, config: VPTConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        self.carries = config.shallow
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        if config.shallow and not self.first_in_chain:
            self.tokens = None  # the first block's prompt arrives carried
            return
        self.tokens = nn.Parameter(torch.empty(1, config.num_tokens, op.in_features))  # (1, L, C)
        # VPT's Xavier-uniform bound for a patch_h * patch_w * 3 -> C projection
        val = math.sqrt(6.0 / float(3 * reduce(mul, op.spec.patch_size, 1) + op.in_features))
        nn.init.uniform_(self.tokens, -val, val)

    # prompts change the output (they are attended to), so the tuned model differs at init by design
    identity_at_init = False

    @classmethod
    def default_targets(cls, spec):
        return spec.blocks if spec.token_ops else f'{spec.blocks}.attn'

    def check_op(self, op: OpInfo) -> None:
        if op.kind in ('linear', 'conv', 'norm'):
            raise ValueError(f'VPT needs a token-sequence op (a block, the block stack) or an attention op; '
                             f'{op.name!r} is a {op.kind}')
        if op.kind == 'module' and op.spec.token_ops is None:
            raise ValueError(f'{op.spec.name} keeps tokens on a grid; attach VPT to its attention ops '
                             f'({op.spec.blocks}.attn) instead of {op.name!r}')
        if self.config.shallow and op.kind != 'module':
            raise ValueError(f'VPT shallow=True carries the prompt from block to block; target the blocks '
                             f'({op.spec.blocks}), not the {op.kind} {op.name!r} (on an attention op, target only '
                             'the first one, without shallow)')

    def prompt(self, batch: int, carried: torch.Tensor | None = None):
        if carried is not None:
            return 'tokens', carried  # (B, L, C): the previous block's output at the prompt positions
        return 'tokens', self.dropout(self.tokens).expand(batch, -1, -1)

    def task_vector(self) -> TaskVector:
        """The prompt tokens (1, L, C); empty on the later blocks of VPT-shallow (the prompt arrives carried)."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


@dataclasses.dataclass
class PrefixConfig(TunerConfig):
    num_tokens: int = 10
    reparam_dim: int | None = None  # hidden width of Li & Liang's re-parameterisation MLP; None: direct
    init_std: float = 0.02


@register_tuner
class Prefix(PromptTuner):
    type_name = 'Prefix'
    config_cls = PrefixConfig
    identity_at_init = False

    def __init__(self, config: PrefixConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        C, L = op.in_features, config.num_tokens
        self.num_heads = op.num_heads
        if config.reparam_dim:
            self.embedding = nn.Parameter(torch.randn(L, C) * config.init_std)  # (L, C)
            self.mlp = nn.Sequential(nn.Linear(C, config.reparam_dim), nn.Tanh(), nn.Linear(config.reparam_dim, 2 * C))
        else:
            self.kv = nn.Parameter(torch.randn(2, L, C) * config.init_std)  # (2, L, C)

    @classmethod
    def default_targets(cls, spec):
        return f'{spec.blocks}.attn'

    def check_op(self, op: OpInfo) -> None:
        if op.kind != 'attention':
            raise ValueError(f'Prefix needs an attention op, but {op.name!r} is a {op.kind}; target e.g. '
                             f'{op.spec.blocks}.attn')

    def prompt(self, batch: int, carried: torch.Tensor | None = None):
        kv = self.prefix_kv()
        L, C = kv.shape[1:]
        kv = kv.reshape(2, 1, L, self.num_heads, C // self.num_heads).transpose(2, 3)  # (2, 1, H, L, D)
        return 'kv', (kv[0], kv[1])

    def prefix_kv(self) -> torch.Tensor:
        """The keys and values the prefix feeds the attention, (2, L, C)."""
        return self.mlp(self.embedding).unflatten(-1, (2, -1)).transpose(0, 1) if self.config.reparam_dim else self.kv

    def task_vector(self) -> TaskVector:
        """The prefix keys and values (2, L, C), also when generated by the re-parameterisation MLP."""
        return {'kv': self.prefix_kv().detach().clone()}

    def task_space(self) -> str:
        return f'Prefix kv {self.config.num_tokens}'

    def rebuild_entry(self) -> dict:
        return {'type': 'Prefix', 'num_tokens': self.config.num_tokens, 'reparam_dim': None,
                'init_std': self.config.init_std}

    def load_task_vector(self, vector: TaskVector) -> None:
        if self.config.reparam_dim:
            raise ValueError('a re-parameterised Prefix generates its keys and values; rebuild it with '
                             'reparam_dim=None to hold a task vector')
        check_vector('Prefix', {'kv': self.kv.shape}, vector)
        with torch.no_grad():
            self.kv.copy_(vector['kv'])
