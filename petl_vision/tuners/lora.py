"""LoRA (Hu et al. 2021, arXiv 2106.09685): a parallel low-rank update ``W x + (alpha/r) B A x``.

On timm's fused ``qkv`` Linear it can target q, k and v separately (``parts=['q', 'v']``, the paper's
setting) in one pass: one matmul computes ``A x`` for all parts, and one matmul with every part's B laid into
a dense (out, P*r) matrix (zero rows for the parts left out) gives the (..., out) update. The small matrix is
built each call; the token-sized tensors are one (..., P*r) and one (..., out), no per-part pieces, zero block
or concatenation (they cost memory and copies in forward and backward).
A is Kaiming-uniform and B zero, so the tuned model starts equal to the frozen one.
"""
import dataclasses
import math

import torch
from torch import nn

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner
from .task_vectors import DENSE_DELTA, TaskVector

_PARTS = ('q', 'k', 'v')


@dataclasses.dataclass
class LoRAConfig(TunerConfig):
    rank: int = 8
    alpha: float | None = None  # None: alpha = rank (scale 1)
    dropout: float = 0.0
    parts: list[str] | None = None  # sub-blocks of a fused qkv output; None: the whole output

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f'LoRA rank must be >= 1, got {self.rank}')
        if self.parts is not None:
            bad = [p for p in self.parts if p not in _PARTS]
            if bad or not self.parts:
                raise ValueError(f'LoRA parts must be a non-empty subset of {_PARTS}, got {self.parts}')
            self.parts = [p for p in _PARTS if p in self.parts]


@register_tuner
class LoRA(Tuner):
    type_name = 'LoRA'
    config_cls = LoRAConfig
    placement = 'parallel'

    def __init__(self, config: LoRAConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        n_chunks = 3 if config.parts else 1
        self.part_index = [_PARTS.index(p) for p in config.parts] if config.parts else [0]
        self.chunk = op.out_features // n_chunks
        self.n_chunks = n_chunks
        r, P = config.rank, len(self.part_index)
        self.scale = (config.alpha if config.alpha is not None else r) / r
        self.lora_A = nn.Parameter(torch.empty(P * r, op.in_features))  # (P*r, in)
        self.lora_B = nn.Parameter(torch.zeros(P, self.chunk, r))  # (P, out/chunks, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    @classmethod
    def default_targets(cls, spec):
        return f'{spec.blocks}.attn.qkv'

    def check_op(self, op: OpInfo) -> None:
        if op.kind != 'linear':
            raise ValueError(f'LoRA needs a Linear op, but {op.name!r} is a {op.kind}; target e.g. its qkv/fc1')
        if self.config.parts and op.out_features % 3:
            raise ValueError(f'LoRA parts={self.config.parts} need a fused qkv Linear (out divisible by 3); '
                             f'{op.name!r} has {op.out_features} outputs')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in) -> update (..., out)."""
        h = self.dropout(x) @ self.lora_A.t().to(x.dtype)  # (..., P*r)
        return h @ self.dense_B().t().to(x.dtype)  # (..., out)

    @classmethod
    def stackable(cls, tuners: list['LoRA']) -> bool:
        """Whether the tuners' A and B can be stacked or concatenated: one shape and part layout, no dropout (each
        tuner would drop its own entries of x)."""
        shape = tuners[0].lora_A.shape, tuners[0].n_chunks, tuners[0].part_index
        return all((t.lora_A.shape, t.n_chunks, t.part_index) == shape and t.config.dropout == 0 for t in tuners)

    @classmethod
    def routed(cls, tuners: list['LoRA'], x: torch.Tensor, index: torch.Tensor) -> torch.Tensor | None:
        """The updates of a mixed batch in two batched matmuls (as S-LoRA / punica): row i of x (rows, ..., in)
        gets ``tuners[index[i]]``'s update, ``index[i] == len(tuners)`` none. None when the tuners cannot be stacked
        (other shapes, dropout): the caller then runs them group by group."""
        if not cls.stackable(tuners):
            return None
        A = torch.stack([t.lora_A for t in tuners]).to(x.dtype)  # (N, P*r, in)
        B = torch.stack([t.dense_B() for t in tuners]).to(x.dtype)  # (N, out, P*r)
        zero_A, zero_B = A.new_zeros((1, *A.shape[1:])), B.new_zeros((1, *B.shape[1:]))
        A, B = torch.cat([A, zero_A]), torch.cat([B, zero_B])  # the last index: the zero update
        flat = x.reshape(x.shape[0], -1, x.shape[-1])  # (rows, T, in)
        h = torch.bmm(flat, A[index].transpose(1, 2))  # (rows, T, P*r)
        return torch.bmm(h, B[index].transpose(1, 2)).reshape(*x.shape[:-1], -1)  # (rows, ..., out)

    @classmethod
    def mixed(cls, tuners: list['LoRA'], x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor | None:
        """The weighted sum ``sum_j weights[i, j] * update_j(x_i)`` of a soft-routed batch as one LoRA of rank
        ``N*P*r``: ``x`` (rows, ..., in) times every A at once, each adapter's slice of that scaled by its weight
        per row, times every B at once. One (..., out) tensor, however many adapters. None when the tuners cannot
        be concatenated (other shapes, dropout): the caller then adds them one by one."""
        if not cls.stackable(tuners):
            return None
        A = torch.cat([t.lora_A for t in tuners]).to(x.dtype)  # (N*P*r, in)
        B = torch.cat([t.dense_B() for t in tuners], dim=1).to(x.dtype)  # (out, N*P*r)
        h = x @ A.t()  # (rows, ..., N*P*r)
        n, k = len(tuners), tuners[0].lora_A.shape[0]
        w = weights.to(x.dtype).view(x.shape[0], *(1,) * (x.ndim - 2), n, 1)
        h = (h.unflatten(-1, (n, k)) * w).flatten(-2)
        return h @ B.t()  # (rows, ..., out)

    def dense_B(self) -> torch.Tensor:
        """Every part's scaled B in one (out, P*r) matrix: rows of chunk p, columns of part i hold B_i."""
        dense = self.lora_B.new_zeros(self.n_chunks, self.chunk, len(self.part_index), self.config.rank)
        # (chunks, out/chunks, P, r)
        for i, p in enumerate(self.part_index):
            dense[p, :, i] = self.lora_B[i]
        return dense.flatten(2).flatten(0, 1) * self.scale  # (out, P*r)

    def delta_weight(self) -> torch.Tensor:
        """The dense update (out, in) that merging adds to the Linear's weight."""
        return self.dense_B() @ self.lora_A

    def mergeable_reason(self, base: nn.Module) -> str | None:
        return None

    def merge(self, base: nn.Linear) -> None:
        base.weight += self.delta_weight().to(base.weight.dtype)

    # task vector (task_vectors.py): the dense update, never A and B apart
    def task_vector(self) -> TaskVector:
        with torch.no_grad():  # a fresh tensor: no copy needed, no graph kept
            return {'delta_weight': self.delta_weight()}

    def task_space(self) -> str:
        return DENSE_DELTA

    def rebuild_entry(self) -> dict:
        return {'type': 'DenseDelta'}

    def load_task_vector(self, vector: TaskVector) -> None:
        raise ValueError(f'a rank-{self.config.rank} LoRA cannot hold an arbitrary dense update; rebuild it as a '
                         'DenseDelta (exact) or SVD-truncate it (task_vectors.low_rank, combine_adapters(rank=k))')
