"""Folding tuners into the frozen weights and back.

Each ``TunedOp`` keeps a stack of merges: merging saves the op's parameters, then the tuner changes them;
unmerging restores the saved parameters, last merged first. One undo mechanism for every tuner (no tuner
writes an inverse), exact to the bit, whatever mix of tuners sits on one op.
"""
import torch
from torch import nn

from .attach import active_adapters, adapter_set, tuned_ops
from .placement import PLACEMENTS


def merge_tuners(model: nn.Module) -> nn.Module:
    """Fold the active adapter's tuners into the frozen weights (no inference overhead); all must be mergeable,
    else nothing is merged. Order per op: parallel tuners first (their updates add up), then sequential ones in
    attach order, which is the order the unmerged forward applies them in."""
    active = active_adapters(model)
    if len(active) != 1 or adapter_set(model).weights is not None:
        raise ValueError(f'adapters {active} act together; merge one (set_adapter(model, name)), or build their '
                         'weight-space combination first')
    pending = [(op, a, n, t) for op in tuned_ops(model) for a, n, t in op.all_tuners()
               if a == active[0] and op.is_active(a, n)]
    bad = [f'{op.op.name}:{n} ({reason})' for op, _, n, t in pending if (reason := t.mergeable_reason(op.base))]
    if bad:
        raise ValueError('cannot merge these tuners: ' + '; '.join(bad[:6]) + (' ...' if len(bad) > 6 else ''))
    with torch.no_grad():
        for op, adapter, name, _ in sorted(pending, key=lambda item: PLACEMENTS[item[3].placement]['order']):
            op.merge(adapter, name)
    return model


def unmerge_tuners(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_tuners`: every op's weights are restored exactly, last merge first."""
    with torch.no_grad():
        for op in tuned_ops(model):
            while op.merged:
                op.unmerge_last()
    return model
