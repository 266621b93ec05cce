"""Forward FLOPs with fvcore, counting the attention matmuls that fvcore skips.

fvcore has no handler for ``aten::scaled_dot_product_attention`` (timm's fused attention), so on its own
it reports 16.87 GFLOPs for ViT-B/16 at 224 px and leaves out ``Q K^T`` and ``softmax(.) V``. We count
those two matmuls the way fvcore counts every matmul: one FLOP per multiply-accumulate.
"""
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

SDPA_OP = 'aten::scaled_dot_product_attention'


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """q (..., N, D), k (..., S, D), v (..., S, Dv): ``Q K^T`` is ...*N*S*D MACs, ``P V`` ...*N*S*Dv."""
    q, k, v = (get_shape(t) for t in inputs[:3])
    rows = 1
    for n in q[:-1]:  # (..., N): batch, heads, queries
        rows *= n
    return rows * k[-2] * (q[-1] + v[-1])


def count_flops(model: nn.Module, x: torch.Tensor, with_attention: bool = True) -> int:
    """Forward FLOPs (MACs, fvcore's convention) of ``model(x)``; ``with_attention=False`` is fvcore alone."""
    analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    if with_attention:
        analysis.set_op_handle(SDPA_OP, sdpa_flop_jit)
    with torch.no_grad():
        return int(analysis.total())
