"""Folding tuners into the frozen weights and back.

Each ``TunedOp`` keeps a stack of merges: merging saves the op's parameters, then the tuner changes them;
unmerging restores the saved parameters, last merged first. One undo mechanism for every tuner (no tuner
writes an inverse), exact to the bit, whatever mix of tuners sits on one op.
"""
import torch
from torch import nn

from .attach import tuned_ops
from .placement import PLACEMENTS


def merge_tuners(model: nn.Module) -> nn.Module:
    """Fold every active tuner into the frozen weights (no inference overhead); all must be mergeable, else
    nothing is merged. Order per op: parallel tuners first (their updates add up), then sequential ones in attach
    order, which is the order the unmerged forward applies them in."""
    pending = [(op, n, t) for op in tuned_ops(model) for n, t in op.tuners.items() if op.is_active(n)]
    bad = [f'{op.op.name}:{n} ({reason})' for op, n, t in pending if (reason := t.mergeable_reason(op.base))]
    if bad:
        raise ValueError('cannot merge these tuners: ' + '; '.join(bad[:6]) + (' ...' if len(bad) > 6 else ''))
    with torch.no_grad():
        for op, name, _ in sorted(pending, key=lambda item: PLACEMENTS[item[2].placement]['order']):
            op.merge(name)
    return model


def unmerge_tuners(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_tuners`: every op's weights are restored exactly, last merge first."""
    with torch.no_grad():
        for op in tuned_ops(model):
            while op.merged:
                op.unmerge_last()
    return model
