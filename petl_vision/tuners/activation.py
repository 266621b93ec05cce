"""Which tuners act on a forward pass, and returning tuners to their initial state: one mechanism for every method.

A tuner acts when its op is enabled (:func:`set_tuners_enabled`), its name is active (:func:`set_tuners_active`)
and it is not merged. Names are plan entry names (``name``, default the type in lower case), shared by every op
the entry attached to. ProLAD's stages, the few-shot evaluator's episodes and the frozen-model reference all use
these functions.
"""
from collections.abc import Iterable

from torch import nn

from .attach import tuned_ops


def set_tuners_enabled(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every attached tuner off (the frozen backbone's output) or back on, keeping which names are active.
    Parameter selections (BitFit, full) train the backbone's own weights and are not affected."""
    for op in tuned_ops(model):
        op.enabled = enabled
    return model


def tuner_names(model: nn.Module) -> list[str]:
    """Every tuner name attached to ``model`` (in any adapter), in attach order."""
    return list(dict.fromkeys(n for op in tuned_ops(model) for _, n, _ in op.all_tuners()))


def set_tuners_active(model: nn.Module, names: Iterable[str], active: bool) -> nn.Module:
    """Switch the tuners called ``names`` on or off in every op; an unknown name is an error (nothing changes)."""
    names = list(names)
    missing = sorted(set(names) - set(tuner_names(model)))
    if missing:
        raise ValueError(f'no tuner named {missing} is attached; attached: {tuner_names(model)}')
    for op in tuned_ops(model):
        for name in names:
            (op.inactive.discard if active else op.inactive.add)(name)
    return model


def active_tuners(model: nn.Module) -> list[str]:
    """Names of the tuners that can act on a forward pass (switched on, not merged, op enabled), in any adapter."""
    return [n for n in tuner_names(model)
            if any(name == n and op.is_active(a, name) for op in tuned_ops(model) for a, name, _ in op.all_tuners())]


def reset_tuners(model: nn.Module, names: Iterable[str] | None = None) -> nn.Module:
    """Return the tuners called ``names`` (default: all) to their initial state (``Tuner.reset``: the state at
    attach time, or a fresh draw where the method re-initialises, as ProLAD's per-episode adapters)."""
    names = tuner_names(model) if names is None else list(names)
    missing = sorted(set(names) - set(tuner_names(model)))
    if missing:
        raise ValueError(f'no tuner named {missing} is attached; attached: {tuner_names(model)}')
    for op in tuned_ops(model):
        if any(n in names for _, n in op.merged):
            raise RuntimeError(f'{op.op.name}: cannot reset merged tuners; call unmerge_tuners(model) first')
        for _, name, tuner in op.all_tuners():
            if name in names:
                tuner.reset()
    return model
