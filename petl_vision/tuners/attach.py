"""Attaching plans to a model as named adapters, all or nothing: every entry is resolved and validated before the
model changes.

An *adapter* is a named plan: its tuners (``TunedOp.tuners[adapter]``), its shared weight sources
(``model.petl_sources[adapter]``) and, for the adapter ``'default'`` that :func:`apply_tuners` creates, the backbone
tensors it trains directly (``trainable``, BitFit, full fine-tuning). A further adapter (:func:`add_adapter`) trains
those as deltas instead (``delta.py``), so adapters never share a trained tensor.
"""
import dataclasses
import re
from typing import Any

import torch
from torch import nn

from .base import OpInfo, ParameterSelection, Tuner
from .descriptor import BackboneSpec, describe
from .patterns import as_patterns, logical_modules, logical_param_name, match_modules, matches_prefix
from .placement import Placement
from .presets import resolve_plan
from .registry import get_tuner_cls
from .routing import BASE
from .sources import SOURCES_ATTR, TunerLookup
from .tuned_op import AdapterSet, TunedOp

Plan = str | list[dict[str, Any]]
DEFAULT = 'default'
ADAPTERS_ATTR = 'petl_adapters'  # name -> {'plan': [...], 'trainable': [...]}
SET_ATTR = 'petl_adapter_set'
_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_\-]*\Z')


@dataclasses.dataclass
class _Prepared:
    """One plan entry, resolved: the tuners to attach (op name -> tuner) or the parameters a selection trains."""

    name: str
    tuners: list[tuple[str, nn.Module, Tuner]] = dataclasses.field(default_factory=list)  # (op name, module, tuner)
    selected: list[nn.Parameter] = dataclasses.field(default_factory=list)


def apply_tuners(model: nn.Module, plan: Plan, trainable: tuple[str, ...] | list[str] = ()) -> nn.Module:
    """Attach the tuners of ``plan`` to ``model`` in place as the adapter ``'default'``, freeze everything else,
    return ``model``.

    Args:
        model: a timm ViT/Swin (or any model a descriptor knows; others get Linear/norm targets).
        plan: a preset name (see :func:`list_presets`) or a list of dicts
            ``{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 8, ...}``.
        trainable: extra parameter-name globs to keep trainable (``('head',)``), matched against the
            parameter name or any dotted prefix of it.

    Transactional: every entry (type, keys, targets, widths, names) is checked and every tuner built before the
    model is touched; if attaching still fails (a tuner that cannot find its partner), the model is restored.
    """
    if DEFAULT in adapter_plans(model):
        raise RuntimeError("model already has tuners attached (adapter 'default'); add another adapter with "
                           'petl_vision.add_adapter(model, name, plan), or build a fresh backbone')
    return _attach(model, DEFAULT, plan, list(trainable))


def add_adapter(model: nn.Module, name: str, plan: Plan, trainable: tuple[str, ...] | list[str] = ()) -> nn.Module:
    """Attach ``plan`` as the adapter ``name`` beside the model's other adapters (all or nothing).

    BitFit becomes bias deltas of this adapter and ``trainable`` globs (e.g. ``('head',)``) become Linear deltas
    (``delta.py``), so each adapter trains its own copy; full fine-tuning trains the backbone itself and can only
    be the ``'default'`` adapter. The first adapter of a model becomes the active one; otherwise
    :func:`set_adapter` chooses.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name == BASE:
        raise ValueError(f'adapter name {name!r} must be an identifier-like string (letters, digits, _ and -) and not '
                         f'{BASE!r}')
    if name in adapter_plans(model):
        raise ValueError(f'model already has an adapter named {name!r}; delete_adapter(model, {name!r}) first or '
                         f'pick another name (adapters: {list_adapters(model)})')
    if name == DEFAULT:
        return _attach(model, DEFAULT, plan, list(trainable))
    return _attach(model, name, plan, list(trainable))


def _attach(model: nn.Module, adapter: str, plan: Plan, trainable: list[str]) -> nn.Module:
    spec = describe(model)
    entries = resolve_plan(plan, spec)
    if adapter != DEFAULT:
        entries = _as_deltas(model, spec, entries, trainable)
    prepared = [_prepare(model, spec, entry, i, adapter) for i, entry in enumerate(entries)]
    _check_names(prepared)
    extra = _trainable_parameters(model, trainable) if adapter == DEFAULT else []
    _commit(model, adapter, prepared, extra)
    adapter_plans(model)[adapter] = {'plan': entries, 'trainable': trainable if adapter == DEFAULT else []}
    if adapter == DEFAULT:
        model.petl_plan, model.petl_trainable = entries, trainable
    return model


def _as_deltas(model: nn.Module, spec: BackboneSpec, entries: list[dict], trainable: list[str]) -> list[dict]:
    """A named adapter's BitFit -> bias deltas, ``trainable`` globs -> Linear deltas; full fine-tuning refused."""
    out = []
    for entry in entries:
        if entry.get('type') == 'Full':
            raise ValueError("full fine-tuning trains the backbone's own tensors, so it can only be the 'default' "
                             'adapter (apply_tuners(model, "full")); a named adapter trains deltas')
        if entry.get('type') == 'BitFit':
            targets = as_patterns(entry.get('targets'))
            ops = [n for n, m in logical_modules(model) if _has_bias(_untuned(m))
                   and (not targets or matches_prefix(n, targets))]
            out.append({'type': 'BiasDelta', 'targets': ops, 'name': entry.get('name') or 'bitfit'})
        else:
            out.append(entry)
    if trainable:
        ops = [n for n, m in logical_modules(model) if isinstance(_untuned(m), nn.Linear)
               and matches_prefix(n, trainable)]
        if not ops:
            raise ValueError(f'trainable={trainable} matched no Linear layer; in a named adapter a trained backbone '
                             'layer becomes a Linear delta (e.g. trainable=("head",))')
        out.append({'type': 'LinearDelta', 'targets': ops, 'name': 'trained'})
    return out


def _has_bias(module: nn.Module) -> bool:
    bias = getattr(module, 'bias', None)
    return isinstance(bias, nn.Parameter) and isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.LayerNorm))


def _untuned(module: nn.Module) -> nn.Module:
    return module.base if isinstance(module, TunedOp) else module


def _prepare(model: nn.Module, spec: BackboneSpec, entry: dict[str, Any], index: int, adapter: str) -> _Prepared:
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
        base = _untuned(module)
        op = dataclasses.replace(OpInfo.of(op_name, base, spec), index=i, count=len(ops))
        tuner = cls(config, op)
        tuner.adapter = adapter
        tuner.check_op(op)
        tuner.train(base.training)  # a tuner added to a model in eval mode is in eval mode (BatchNorm, dropout)
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


def _commit(model: nn.Module, adapter: str, prepared: list[_Prepared], extra: list[nn.Parameter]) -> None:
    """Wrap, add, freeze and bind; on any error put the model back as it was."""
    grads = {p: p.requires_grad for p in model.parameters()}
    wraps: list[tuple[nn.Module, str, nn.Module]] = []
    added: list[TunedOp] = []
    first = not adapter_plans(model)
    had_sources = hasattr(model, SOURCES_ATTR)
    adapters = adapter_set(model)
    try:
        if first:
            model.requires_grad_(False)
        for entry in prepared:
            for p in entry.selected:
                p.requires_grad_(True)
            for op_name, base, tuner in entry.tuners:
                op = _op_for(model, op_name, base, wraps)
                op.add(adapter, entry.name, tuner)
                added.append(op)
        for p in extra:
            p.requires_grad_(True)
        lookup = TunerLookup(model, lambda path, name: _find_tuner(model, path, name, adapter), adapter)
        for entry in prepared:
            for _, _, tuner in entry.tuners:
                tuner.bind(lookup)
    except BaseException:
        for op in added:
            if adapter in op.tuners:
                del op.tuners[adapter]
        for parent, attr, original in reversed(wraps):
            setattr(parent, attr, original)
        sources = getattr(model, SOURCES_ATTR, None)
        if sources is not None and adapter in sources:
            del sources[adapter]
        if not had_sources and hasattr(model, SOURCES_ATTR):
            delattr(model, SOURCES_ATTR)
        for p, flag in grads.items():
            p.requires_grad_(flag)
        raise
    adapters.names.append(adapter)
    if first:
        adapters.active = [adapter]


def _op_for(model: nn.Module, op_name: str, base: nn.Module, wraps: list) -> TunedOp:
    """The ``TunedOp`` around ``base`` (made and swapped into the model on first use)."""
    current = dict(logical_modules(model))[op_name]
    if isinstance(current, TunedOp):
        return current
    op = TunedOp(base, OpInfo.of(op_name, base, describe(model)), adapter_set(model))
    parent_name, _, attr = op_name.rpartition('.')
    parent = dict(logical_modules(model))[parent_name] if parent_name else model
    if isinstance(parent, TunedOp):
        parent = parent.base
    setattr(parent, attr, op)
    wraps.append((parent, attr, base))
    return op


def _find_tuner(model: nn.Module, op_name: str, tuner_name: str, adapter: str) -> nn.Module | None:
    op = dict(logical_modules(model)).get(op_name)
    if not isinstance(op, TunedOp) or adapter not in op.tuners:
        return None
    group = op.tuners[adapter]
    return group[tuner_name] if tuner_name in group else None  # noqa: SIM401 (ModuleDict has no get)


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device('cpu')


# adapters ---------------------------------------------------------------------------------------------------------
def adapter_plans(model: nn.Module) -> dict[str, dict[str, Any]]:
    """The model's adapters: name -> ``{'plan': [...], 'trainable': [...]}`` (created empty on first use)."""
    plans = getattr(model, ADAPTERS_ATTR, None)
    if plans is None:
        plans = {}
        setattr(model, ADAPTERS_ATTR, plans)
    return plans


def adapter_set(model: nn.Module) -> AdapterSet:
    """The object every tuned op of ``model`` reads its adapters and routing from."""
    current = getattr(model, SET_ATTR, None)
    if current is None:
        current = AdapterSet()
        setattr(model, SET_ATTR, current)
    return current


def list_adapters(model: nn.Module) -> list[str]:
    """The model's adapters in attach order."""
    return list(adapter_plans(model))


def set_adapter(model: nn.Module, name: str | list[str], weights: list[float] | None = None) -> nn.Module:
    """Make ``name`` the active adapter, or several adapters act together, their outputs combined with ``weights``
    (default equal: ``1 / n`` each). A forward pass may still route per sample with ``tuner_context(adapter=...)``."""
    names = [name] if isinstance(name, str) else list(name)
    if any(op.merged for op in tuned_ops(model)):
        raise RuntimeError('an adapter is merged into the weights; call unmerge_tuners(model) before switching')
    unknown = [n for n in names if n not in adapter_plans(model)]
    if unknown or not names:
        raise KeyError(f'no adapter named {unknown or names}; adapters: {list_adapters(model)}')
    if weights is not None and len(weights) != len(names):
        raise ValueError(f'{len(weights)} weights for {len(names)} adapters {names}')
    s = adapter_set(model)
    s.active = names
    s.weights = None if len(names) == 1 and weights is None else \
        [float(w) for w in (weights if weights is not None else [1.0 / len(names)] * len(names))]
    return model


def active_adapters(model: nn.Module) -> list[str]:
    return list(adapter_set(model).active)


def delete_adapter(model: nn.Module, name: str) -> nn.Module:
    """Take the adapter ``name`` off the model; ops left without tuners get their frozen op back. The other
    adapters' outputs are exactly what they were."""
    plans = adapter_plans(model)
    if name not in plans:
        raise KeyError(f'no adapter named {name!r}; adapters: {list_adapters(model)}')
    ops = [(n, m) for n, m in model.named_modules() if isinstance(m, TunedOp) and name in m.tuners]
    if any(name == a for _, m in ops for a, _ in m.merged):
        raise RuntimeError(f'adapter {name!r} is merged into the weights; call unmerge_tuners(model) first')
    for op_name, op in reversed(ops):
        op.remove_adapter(name)
        if not op.tuners:
            parent_name, _, attr = op_name.rpartition('.')
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, op.base)
    sources = getattr(model, SOURCES_ATTR, None)
    if sources is not None and name in sources:
        del sources[name]
    if name == DEFAULT:
        for p in _direct_parameters(model):
            p.requires_grad_(False)
        for attr in ('petl_plan', 'petl_trainable'):
            if hasattr(model, attr):
                delattr(model, attr)
    del plans[name]
    s = adapter_set(model)
    s.names.remove(name)
    s.active = [a for a in s.active if a != name]
    if s.weights is not None or not s.active:
        s.weights = None
        s.active = s.active[:1] or list(plans)[:1]
    return model


def remove_tuners(model: nn.Module, requires_grad: dict[nn.Parameter, bool] | None = None) -> nn.Module:
    """Take every adapter off ``model`` (each ``TunedOp`` replaced by its frozen op) and forget the plans;
    ``requires_grad``: the flags to give the parameters back (default: leave them as they are)."""
    for name, module in reversed(list(model.named_modules())):
        if isinstance(module, TunedOp):
            if module.merged:
                raise RuntimeError(f'{module.op.name}: unmerge the tuners before removing them')
            parent_name, _, attr = name.rpartition('.')
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, module.base)
    for attr in (SOURCES_ATTR, 'petl_plan', 'petl_trainable', ADAPTERS_ATTR, SET_ATTR):
        if hasattr(model, attr):
            delattr(model, attr)
    for p, flag in (requires_grad or {}).items():
        p.requires_grad_(flag)
    return model


# inspection ---------------------------------------------------------------------------------------------------
def tuned_ops(model: nn.Module) -> list[TunedOp]:
    return [m for m in model.modules() if isinstance(m, TunedOp)]


def tuned_network(model: nn.Module) -> nn.Module:
    """The tuned backbone of a model: ``model.backbone`` where the model wraps one (our mmengine models), else
    the model itself. Tools that load, save or publish tuner files go through this one convention."""
    inner = getattr(model, 'module', model)  # DDP/FSDP wrappers
    backbone = getattr(inner, 'backbone', None)
    return backbone if isinstance(backbone, nn.Module) else inner


def _direct_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Backbone tensors trained directly (by the 'default' adapter): trainable parameters with a logical name."""
    return [p for n, p in model.named_parameters() if p.requires_grad and logical_param_name(n, model) is not None]


def adapter_parameters(model: nn.Module, adapter: str) -> list[nn.Parameter]:
    """The trainable tensors of one adapter: its tuners and weight sources, and for 'default' the backbone tensors
    it trains directly."""
    if adapter not in adapter_plans(model):
        raise KeyError(f'no adapter named {adapter!r}; adapters: {list_adapters(model)}')
    params = [p for op in tuned_ops(model) if adapter in op.tuners for p in op.tuners[adapter].parameters()]
    sources = getattr(model, SOURCES_ATTR, None)
    if sources is not None and adapter in sources:
        params += list(sources[adapter].parameters())
    if adapter == DEFAULT:
        params += _direct_parameters(model)
    unique = {id(p): p for p in params}
    return [p for p in unique.values() if p.requires_grad]


def count_parameters(model: nn.Module, adapter: str | None = None) -> dict[str, int]:
    """``{'trainable': int, 'total': int}`` (shared parameters counted once); with ``adapter``, ``trainable`` counts
    that adapter's tensors only."""
    params = list(model.parameters())
    trainable = adapter_parameters(model, adapter) if adapter is not None else [p for p in params if p.requires_grad]
    return {'trainable': sum(p.numel() for p in trainable), 'total': sum(p.numel() for p in params)}


def describe_tuners(model: nn.Module) -> list[dict[str, Any]]:
    """One row per attached tuner: op, adapter, name, type, placement, trainable parameters, mergeable, active."""
    rows = []
    for op in tuned_ops(model):
        for adapter, name, t in op.all_tuners():
            rows.append({'op': op.op.name, 'adapter': adapter, 'name': name, 'type': t.type_name,
                         'placement': t.placement.value, 'params': sum(p.numel() for p in t.parameters()),
                         'mergeable': t.mergeable_reason(op.base) is None, 'active': op.is_active(adapter, name)})
    return rows
