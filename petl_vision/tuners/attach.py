"""Attaching a plan to a model, all or nothing: every entry is resolved and validated before the model changes."""
import dataclasses
from typing import Any

import torch
from torch import nn

from .base import OpInfo, ParameterSelection, Tuner
from .descriptor import BackboneSpec, describe
from .patterns import as_patterns, logical_modules, logical_param_name, match_modules, matches_prefix
from .placement import Placement
from .presets import resolve_plan
from .registry import get_tuner_cls
from .sources import SOURCES_ATTR, TunerLookup
from .tuned_op import TunedOp

Plan = str | list[dict[str, Any]]


@dataclasses.dataclass
class _Prepared:
    """One plan entry, resolved: the tuners to attach (op name -> tuner) or the parameters a selection trains."""

    name: str
    tuners: list[tuple[str, nn.Module, Tuner]] = dataclasses.field(default_factory=list)  # (op name, module, tuner)
    selected: list[nn.Parameter] = dataclasses.field(default_factory=list)


def apply_tuners(model: nn.Module, plan: Plan, trainable: tuple[str, ...] | list[str] = ()) -> nn.Module:
    """Attach the tuners of ``plan`` to ``model`` in place, freeze everything else, return ``model``.

    Args:
        model: a timm ViT/Swin (or any model a descriptor knows; others get Linear/norm targets).
        plan: a preset name (see :func:`list_presets`) or a list of dicts
            ``{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 8, ...}``.
        trainable: extra parameter-name globs to keep trainable (``('head',)``), matched against the
            parameter name or any dotted prefix of it.

    Transactional: every entry (type, keys, targets, widths, names) is checked and every tuner built before the
    model is touched; if attaching still fails (a tuner that cannot find its partner), the model is restored.
    """
    if getattr(model, 'petl_plan', None) is not None:
        raise RuntimeError('model already has tuners attached; build a fresh backbone to apply another plan')
    spec = describe(model)
    entries = resolve_plan(plan, spec)
    prepared = [_prepare(model, spec, entry, i) for i, entry in enumerate(entries)]
    _check_names(prepared)
    extra = _trainable_parameters(model, list(trainable))
    _commit(model, prepared, extra)
    model.petl_plan = entries
    model.petl_trainable = list(trainable)
    return model


def _prepare(model: nn.Module, spec: BackboneSpec, entry: dict[str, Any], index: int) -> _Prepared:
    if not isinstance(entry, dict) or 'type' not in entry:
        raise ValueError(f'plan entry {index} ({entry}) has no "type"; e.g. '
                         '{"type": "LoRA", "targets": "blocks.*.attn.qkv"}')
    cfg = dict(entry)
    type_name = cfg.pop('type')
    cls = get_tuner_cls(type_name)
    config = cls.config_cls.from_dict(type_name, cfg)
    if issubclass(cls, ParameterSelection):
        selection = cls(config)
        chosen = [p for n, p in model.named_parameters()
                  if (ln := logical_param_name(n, model)) is not None and selection.selects(ln, p)]
        if not chosen:
            raise ValueError(f'{type_name} selected no parameter of {type(model).__name__}')
        return _Prepared(type_name.lower(), selected=chosen)
    patterns = as_patterns(config.targets) or as_patterns(cls.default_targets(spec))
    if not patterns:
        raise ValueError(f'{type_name} has no `targets` and no default target on a {spec.name} backbone; '
                         'name the ops to attach it to')
    ops = match_modules(model, patterns, f'{type_name} targets')
    prepared = _Prepared(config.name or type_name.lower())
    for i, (op_name, module) in enumerate(ops):
        base = module.base if isinstance(module, TunedOp) else module
        op = dataclasses.replace(OpInfo.of(op_name, base, spec), index=i, count=len(ops))
        tuner = cls(config, op)
        tuner.check_op(op)
        prepared.tuners.append((op_name, base, tuner.to(_device_of(base))))
    return prepared


def _check_names(prepared: list[_Prepared]) -> None:
    """Two entries may share an op, not a tuner name on it; a side tuner (Bypass) is alone on its op."""
    seen: dict[str, list[Tuner]] = {}
    for entry in prepared:
        for op_name, _, tuner in entry.tuners:
            others = seen.setdefault(op_name, [])
            if any(t.tuner_name == tuner.tuner_name for t in others):
                raise ValueError(f'two plan entries put a tuner named {tuner.tuner_name!r} on {op_name!r}; give '
                                 'one of them a `name`')
            if others and Placement.SIDE in {tuner.placement, *(t.placement for t in others)}:
                raise ValueError(f'a side tuner (Bypass) replaces the output of {op_name!r}; it cannot share the op '
                                 'with other tuners (attach those to the ops inside it instead)')
            others.append(tuner)


def _trainable_parameters(model: nn.Module, patterns: list[str]) -> list[nn.Parameter]:
    if not patterns:
        return []
    hits = [p for n, p in model.named_parameters()
            if (ln := logical_param_name(n, model)) is not None and matches_prefix(ln, patterns)]
    if not hits:
        raise ValueError(f'trainable={patterns} matched no parameter; top-level modules: '
                         f'{", ".join(n for n, _ in model.named_children())}')
    return hits


def _commit(model: nn.Module, prepared: list[_Prepared], extra: list[nn.Parameter]) -> None:
    """Wrap, add, freeze and bind; on any error put the model back as it was."""
    grads = {p: p.requires_grad for p in model.parameters()}
    wraps: list[tuple[nn.Module, str, nn.Module]] = []
    had_sources = hasattr(model, SOURCES_ATTR)
    try:
        model.requires_grad_(False)
        for entry in prepared:
            for p in entry.selected:
                p.requires_grad_(True)
            for op_name, base, tuner in entry.tuners:
                _op_for(model, op_name, base, tuner, wraps).add(entry.name, tuner)
        for p in extra:
            p.requires_grad_(True)
        lookup = TunerLookup(model, lambda path, name: _find_tuner(model, path, name))
        for entry in prepared:
            for _, _, tuner in entry.tuners:
                tuner.bind(lookup)
    except BaseException:
        for parent, attr, original in reversed(wraps):
            setattr(parent, attr, original)
        if not had_sources and hasattr(model, SOURCES_ATTR):
            delattr(model, SOURCES_ATTR)
        for p, flag in grads.items():
            p.requires_grad_(flag)
        raise


def remove_tuners(model: nn.Module, requires_grad: dict[nn.Parameter, bool] | None = None) -> nn.Module:
    """Take every tuner off ``model`` (each ``TunedOp`` replaced by its frozen op) and forget the plan;
    ``requires_grad``: the flags to give the parameters back (default: leave them as they are)."""
    for name, module in reversed(list(model.named_modules())):
        if isinstance(module, TunedOp):
            if module.merged:
                raise RuntimeError(f'{module.op.name}: unmerge the tuners before removing them')
            parent_name, _, attr = name.rpartition('.')
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, module.base)
    for attr in (SOURCES_ATTR, 'petl_plan', 'petl_trainable'):
        if hasattr(model, attr):
            delattr(model, attr)
    for p, flag in (requires_grad or {}).items():
        p.requires_grad_(flag)
    return model


def _op_for(model: nn.Module, op_name: str, base: nn.Module, tuner: Tuner, wraps: list) -> TunedOp:
    """The ``TunedOp`` around ``base`` (made and swapped into the model on first use)."""
    current = dict(logical_modules(model))[op_name]
    if isinstance(current, TunedOp):
        return current
    op = TunedOp(base, OpInfo.of(op_name, base, describe(model)))
    parent_name, _, attr = op_name.rpartition('.')
    parent = dict(logical_modules(model))[parent_name] if parent_name else model
    if isinstance(parent, TunedOp):
        parent = parent.base
    setattr(parent, attr, op)
    wraps.append((parent, attr, base))
    return op


def _find_tuner(model: nn.Module, op_name: str, tuner_name: str) -> nn.Module | None:
    op = dict(logical_modules(model)).get(op_name)
    return op.tuners[tuner_name] if isinstance(op, TunedOp) and tuner_name in op.tuners else None


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device('cpu')


def tuned_ops(model: nn.Module) -> list[TunedOp]:
    return [m for m in model.modules() if isinstance(m, TunedOp)]


def tuned_network(model: nn.Module) -> nn.Module:
    """The tuned backbone of a model: ``model.backbone`` where the model wraps one (our mmengine models), else
    the model itself. Tools that load, save or publish tuner files go through this one convention."""
    inner = getattr(model, 'module', model)  # DDP/FSDP wrappers
    backbone = getattr(inner, 'backbone', None)
    return backbone if isinstance(backbone, nn.Module) else inner


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{'trainable': int, 'total': int}`` (shared parameters counted once)."""
    params = list(model.parameters())
    return {'trainable': sum(p.numel() for p in params if p.requires_grad),
            'total': sum(p.numel() for p in params)}


def describe_tuners(model: nn.Module) -> list[dict[str, Any]]:
    """One row per attached tuner: op, name, type, placement, trainable parameters, mergeable, active."""
    rows = []
    for op in tuned_ops(model):
        for name, t in op.tuners.items():
            rows.append({'op': op.op.name, 'name': name, 'type': t.type_name, 'placement': t.placement.value,
                         'params': sum(p.numel() for p in t.parameters()),
                         'mergeable': t.mergeable_reason(op.base) is None, 'active': op.is_active(name)})
    return rows
