"""L2R's ``merge`` composition: per sample, the weighted sum of the adapters' task vectors, applied as weights.

For a tuned Linear with frozen weight ``W0`` and adapters ``a`` holding linear updates (``dW_a``, ``db_a``), sample
``b`` with routing weights ``w_b`` is computed with its own merged layer::

    W_b = W0 + sum_a w_ba dW_a,    y_b = W_b h_b + b0 + sum_a w_ba db_a

``output`` mode computes ``W0 h + sum_a w_ba U_a(h)`` instead. For LoRA (``U_a(h) = dW_a h``), a trained head
(:class:`~petl_vision.tuners.delta.LinearDelta`) and BitFit deltas the update is linear in ``h``, so the two modes
agree (to float rounding); merging builds a (B, out, in) weight per op, so ``output`` is the cheap way to get the
same numbers. Adapters with a non-linear update (bottleneck adapters, prompts) have no such task vector and are
refused by name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

import petl_vision as pv
from petl_vision.continual.sites import adapted_ops
from petl_vision.tuners.delta import BiasDelta, LinearDelta
from petl_vision.tuners.lora import LoRA


def linear_update(tuner: nn.Module, in_features: int, out_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tuner's update as ``(dW (out, in), db (out,))``; ValueError for a tuner whose update is not linear."""
    if isinstance(tuner, LoRA):
        return tuner.delta_weight(), tuner.lora_A.new_zeros(out_features)
    if isinstance(tuner, LinearDelta):
        return tuner.weight, tuner.bias
    if isinstance(tuner, BiasDelta) and tuner.channel_dim != 1:
        return tuner.bias.new_zeros(out_features, in_features), tuner.bias
    raise ValueError(f"merge mode adds task vectors of linear updates (LoRA, LinearDelta, BiasDelta on a Linear); "
                     f"{type(tuner).__name__} has none: use mode='output'")


def adapter_update(op, adapter: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of one adapter's tuners' linear updates at ``op`` (zero where it has none)."""
    base = op.base
    if not isinstance(base, nn.Linear):
        raise ValueError(f'merge mode merges Linear layers; {op.op.name!r} is a {type(base).__name__}: '
                         "use mode='output'")
    dW = base.weight.new_zeros(base.out_features, base.in_features)
    db = base.weight.new_zeros(base.out_features)
    for tuner in (op.tuners[adapter].values() if adapter in op.tuners else ()):
        w, b = linear_update(tuner, base.in_features, base.out_features)
        dW, db = dW + w, db + b
    return dW, db


class MergedWeights:
    """``with MergedWeights(model, adapters, weights_fn): model(x)``: every adapted op runs frozen (every adapter
    off) and a forward hook adds ``h_b (sum_a w_ba dW_a)^T + sum_a w_ba db_a`` per sample, with ``w = weights_fn(
    op_name, h)`` (B, N)."""

    def __init__(self, model: nn.Module, adapters: Sequence[str],
                 weights_fn: Callable[[str, torch.Tensor], torch.Tensor]) -> None:
        self.model, self.adapters, self.weights_fn = model, list(adapters), weights_fn
        self.ops = adapted_ops(model, self.adapters)
        self.updates = {n: [adapter_update(op, a) for a in self.adapters] for n, op in self.ops.items()}
        self._handles: list = []
        self._context = None

    def _hook(self, name: str):
        dW = torch.stack([w for w, _ in self.updates[name]])  # (N, out, in)
        db = torch.stack([b for _, b in self.updates[name]])  # (N, out)

        def add_merged(module, args, output):
            h = args[0]
            w = self.weights_fn(name, h).to(h.dtype)  # (B, N)
            merged = torch.einsum('bn,noi->boi', w, dW.to(h.dtype))  # (B, out, in): one layer per sample
            flat = h.reshape(h.shape[0], -1, h.shape[-1])  # (B, T, in)
            update = torch.bmm(flat, merged.transpose(1, 2)) + (w @ db.to(h.dtype))[:, None]  # (B, T, out)
            return output + update.reshape(*h.shape[:-1], -1)

        return add_merged

    def __enter__(self) -> MergedWeights:
        self._handles = [op.register_forward_hook(self._hook(n)) for n, op in self.ops.items()]
        self._context = pv.tuner_context(adapter=None)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        context, self._context = self._context, None
        context.__exit__(*exc)
