"""The public functions: attach, count, save/load, merge/unmerge, enable/disable."""
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..backbones import describe
from ..version import __version__
from .base import OpInfo, ParameterSelection
from .patterns import as_patterns, logical_modules, logical_param_name, match_modules, matches_prefix
from .presets import resolve_plan
from .registry import get_tuner_cls
from .sources import TunerLookup
from .tuned_op import TunedOp

FILE_FORMAT = 'petl_vision.tuners/1'
Plan = str | list[dict[str, Any]]


def apply_tuners(model: nn.Module, plan: Plan, trainable: tuple[str, ...] | list[str] = ()) -> nn.Module:
    """Attach the tuners of ``plan`` to ``model`` in place, freeze everything else, return ``model``.

    Args:
        model: a timm ViT/Swin (or any model a descriptor knows; others get Linear/norm targets).
        plan: a preset name (see :func:`list_presets`) or a list of dicts
            ``{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 8, ...}``.
        trainable: extra parameter-name globs to keep trainable (``('head',)``), matched against the
            parameter name or any dotted prefix of it.
    """
    if getattr(model, 'petl_plan', None) is not None:
        raise RuntimeError('model already has tuners attached; build a fresh backbone to apply another plan')
    spec = describe(model)
    entries = resolve_plan(plan, spec)
    model.requires_grad_(False)
    for entry in entries:
        _apply_entry(model, spec, entry)
    patterns = list(trainable)
    if patterns:
        hits = 0
        for name, param in model.named_parameters():
            logical = logical_param_name(name, model)
            if logical is not None and matches_prefix(logical, patterns):
                param.requires_grad_(True)
                hits += 1
        if not hits:
            raise ValueError(f'trainable={patterns} matched no parameter; top-level modules: '
                             f'{", ".join(n for n, _ in model.named_children())}')
    model.petl_plan = entries
    model.petl_trainable = patterns
    return model


def _apply_entry(model: nn.Module, spec, entry: dict[str, Any]) -> None:
    if 'type' not in entry:
        raise ValueError(f'plan entry {entry} has no "type"; e.g. {{"type": "LoRA", "targets": "blocks.*.attn.qkv"}}')
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
        for p in chosen:
            p.requires_grad_(True)
        return
    patterns = as_patterns(config.targets) or as_patterns(cls.default_targets(spec))
    if not patterns:
        raise ValueError(f'{type_name} has no `targets` and no default target on a {spec.name} backbone; '
                         'name the ops to attach it to')
    name = config.name or type_name.lower()
    for op_name, module in match_modules(model, patterns, f'{type_name} targets'):
        op = module if isinstance(module, TunedOp) else _wrap(model, op_name, module, spec)
        tuner = cls(config, op.op)
        device = next(op.base.parameters()).device
        op.add(name, tuner.to(device))
        tuner.bind(TunerLookup(model, lambda path, tuner_name: _find_tuner(model, path, tuner_name)))


def _find_tuner(model: nn.Module, op_name: str, tuner_name: str) -> nn.Module | None:
    op = dict(logical_modules(model)).get(op_name)
    return op.tuners[tuner_name] if isinstance(op, TunedOp) and tuner_name in op.tuners else None


def _wrap(model: nn.Module, name: str, module: nn.Module, spec) -> TunedOp:
    op = TunedOp(module, OpInfo.of(name, module, spec))
    parent_name, _, attr = name.rpartition('.')
    parent = dict(logical_modules(model))[parent_name] if parent_name else model
    if isinstance(parent, TunedOp):
        parent = parent.base
    setattr(parent, attr, op)
    return op


def tuned_ops(model: nn.Module) -> list[TunedOp]:
    return [m for m in model.modules() if isinstance(m, TunedOp)]


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{'trainable': int, 'total': int}`` (shared parameters counted once)."""
    params = list(model.parameters())
    return {'trainable': sum(p.numel() for p in params if p.requires_grad),
            'total': sum(p.numel() for p in params)}


def backbone_fingerprint(model: nn.Module) -> dict[str, Any]:
    """Identity of the frozen backbone (class, size, digest of parameter names and shapes)."""
    lines, n = [], 0
    for name, p in model.named_parameters():
        logical = logical_param_name(name, model)
        if logical is not None:
            lines.append(f'{logical}:{tuple(p.shape)}')
            n += p.numel()
    digest = hashlib.sha256('\n'.join(sorted(lines)).encode()).hexdigest()[:16]
    return {'class': type(model).__name__, 'family': describe(model).name, 'num_params': n, 'digest': digest}


def _trained_state(module: nn.Module, skip: set[int] = frozenset()) -> dict[str, torch.Tensor]:
    """Trainable parameters of ``module`` and the persistent buffers (BatchNorm statistics) of every submodule
    that holds one directly; submodules whose id is in ``skip`` are left out."""
    state = {}
    for name, sub in module.named_modules():
        if id(sub) in skip:
            continue
        trained = {n: p for n, p in sub.named_parameters(recurse=False) if p.requires_grad}
        if trained:
            trained.update((n, b) for n, b in sub.named_buffers(recurse=False)
                           if n not in sub._non_persistent_buffers_set)
        state.update((f'{name}.{n}' if name else n, t) for n, t in trained.items())
    return state


def _tuner_state(model: nn.Module) -> dict[str, torch.Tensor]:
    state = _trained_state(model)
    for name, module in model.named_modules():
        if isinstance(module, TunedOp):
            state.update((f'{name}.tuners.{b}', t) for b, t in module.tuners.named_buffers())
    return state


OWNER_PREFIX = 'owner.'


def _owner_state(owner: nn.Module | None, backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The trained state of ``owner`` outside ``backbone`` (dense task decoders), keyed ``owner.<name>``."""
    if owner is None:
        return {}
    inside = {id(m) for m in backbone.modules()}
    return {OWNER_PREFIX + n: t for n, t in _trained_state(owner, inside).items()}


def save_tuners(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None,
                owner: nn.Module | None = None) -> Path:
    """Write the trainable tensors (and tuner buffers) as safetensors, with the plan as metadata.

    ``extra``: JSON-serialisable information stored with it (the training config, metrics).
    ``owner``: the model holding this backbone; its trainable parameters outside the backbone (the task decoders
    of a ``MultiTaskDenseModel``) are stored too, as ``owner.<name>``, so one file restores the whole tuned model.
    """
    if getattr(model, 'petl_plan', None) is None:
        raise RuntimeError('model has no tuners; call petl_vision.apply_tuners(model, plan) first')
    if any(t.merged for op in tuned_ops(model) for t in op.tuners.values()):
        raise RuntimeError('tuners are merged into the backbone; call unmerge_tuners(model) before saving')
    state = {**_tuner_state(model), **_owner_state(owner, model)}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {'format': FILE_FORMAT, 'petl_vision': __version__, 'plan': json.dumps(model.petl_plan),
            'trainable': json.dumps(model.petl_trainable), 'backbone': json.dumps(backbone_fingerprint(model)),
            'extra': json.dumps(extra or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_tuner_file(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata with plan/trainable/backbone decoded, tensors) of a tuner file; a clear error if it is not one."""
    try:
        with safe_open(str(path), framework='pt') as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except FileNotFoundError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f'{path} is not a readable safetensors tuner file ({e}); re-download or re-save it') from e
    if meta.get('format') != FILE_FORMAT:
        raise ValueError(f'{path} is a safetensors file but not a petl_vision tuner file (format '
                         f'{meta.get("format")!r}); write it with petl_vision.save_tuners')
    decoded = {k: json.loads(meta[k]) for k in ('plan', 'trainable', 'backbone', 'extra')}
    decoded['petl_vision'] = meta.get('petl_vision')
    return decoded, tensors


def load_tuners(model: nn.Module, path: str | Path, owner: nn.Module | None = None) -> nn.Module:
    """Load a file written by :func:`save_tuners`; a fresh backbone gets the file's plan applied first.

    ``owner``: the model holding this backbone; the file's ``owner.<name>`` tensors (task decoders) are loaded into
    it. Without ``owner`` they are left out (the backbone alone is restored).
    """
    meta, tensors = read_tuner_file(path)
    owned = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith(OWNER_PREFIX)]}
    saved, here = meta['backbone'], backbone_fingerprint(model)
    if saved['digest'] != here['digest']:
        raise ValueError(
            f'{path} was saved for a {saved["class"]} ({saved["family"]}, {saved["num_params"]:,} parameters, '
            f'fingerprint {saved["digest"]}) but this model is a {here["class"]} ({here["family"]}, '
            f'{here["num_params"]:,} parameters, fingerprint {here["digest"]}); build the backbone (and head) the '
            'file was made for')
    current = getattr(model, 'petl_plan', None)
    if current is None:
        apply_tuners(model, meta['plan'], meta['trainable'])
    elif current != meta['plan']:
        raise ValueError(f'{path} holds tuners for plan {meta["plan"]} but the model was tuned with {current}; '
                         'load it onto a fresh backbone (the plan is rebuilt from the file)')
    targets = [(_tuner_state(model), tensors)]
    if owner is not None:
        targets.append((_owner_state(owner, model), owned))
    for state, saved in targets:  # check everything before copying anything: a bad file changes nothing
        _check_fits(path, state, saved)
    with torch.no_grad():
        for state, saved in targets:
            for k, t in saved.items():
                state[k].copy_(t)
    return model


def _check_fits(path, state: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> None:
    missing, unexpected = sorted(set(state) - set(saved)), sorted(set(saved) - set(state))
    if missing or unexpected:
        raise ValueError(f'{path} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}')
    for k, t in saved.items():
        if state[k].shape != t.shape:
            raise ValueError(f'{path}: {k} has shape {tuple(t.shape)}, model expects {tuple(state[k].shape)}')


def merge_tuners(model: nn.Module) -> nn.Module:
    """Fold every tuner into the frozen weights (no inference overhead); all must be mergeable."""
    pending = [(op, n, t) for op in tuned_ops(model) for n, t in op.tuners.items() if not t.merged]
    bad = [f'{op.op.name}:{n} ({reason})' for op, n, t in pending if (reason := t.mergeable_reason(op.base))]
    if bad:
        raise ValueError('cannot merge these tuners: ' + '; '.join(bad[:6]) + (' ...' if len(bad) > 6 else ''))
    with torch.no_grad():
        for op, _, t in sorted(pending, key=lambda item: item[2].placement != 'parallel'):
            t.merge(op.base)
            t.merged = True
    return model


def unmerge_tuners(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_tuners`, restoring the frozen weights (up to float rounding)."""
    merged = [(op, t) for op in tuned_ops(model) for t in op.tuners.values() if t.merged]
    with torch.no_grad():
        for op, t in sorted(merged, key=lambda item: item[1].placement == 'parallel'):
            t.unmerge(op.base)
            t.merged = False
    return model


def set_tuners_enabled(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch attached tuners off (the frozen backbone's output) or on. Parameter selections
    (BitFit, full) train the backbone's own weights and are not affected."""
    for op in tuned_ops(model):
        op.tuners_enabled = enabled
    return model


def clone_untuned(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with tuners disabled, for reference outputs in tests and tools."""
    return set_tuners_enabled(copy.deepcopy(model), False)


def describe_tuners(model: nn.Module) -> list[dict[str, Any]]:
    """One row per attached tuner: op, name, type, placement, trainable parameters, mergeable."""
    rows = []
    for op in tuned_ops(model):
        for name, t in op.tuners.items():
            rows.append({'op': op.op.name, 'name': name, 'type': t.type_name, 'placement': t.placement,
                         'params': sum(p.numel() for p in t.parameters()),
                         'mergeable': t.mergeable_reason(op.base) is None})
    return rows
