"""Tuner files: the trainable tensors (and tuner buffers) as safetensors, with the plan, the backbone's fingerprint
and a digest of the tensors as metadata.

Format ``petl_vision.tuners/2``. Files are written atomically (a temporary file in the same folder, renamed
over the target), so a kill during a save never leaves a truncated file, with the normal umask. Reading checks
the digest, so a damaged file is refused by name instead of loading garbage. Older formats pass through
:data:`MIGRATIONS` (format -> function rewriting metadata and tensors to the next format) on read.
"""
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..atomic_write import write_atomic
from ..version import __version__
from .attach import (DEFAULT, active_adapters, add_adapter, adapter_plans, delete_adapter, list_adapters,
                     tuned_ops)
from .descriptor import describe
from .patterns import logical_param_name
from .sources import SOURCES_ATTR

FILE_FORMAT = 'petl_vision.tuners/2'
OWNER_PREFIX = 'owner.'
_JSON_KEYS = ('plan', 'trainable', 'backbone', 'extra')


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


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f'{key}|{t.dtype}|{tuple(t.shape)}|'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def _trained_state(module: nn.Module, skip: frozenset[int] = frozenset()) -> dict[str, torch.Tensor]:
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


def adapter_state(model: nn.Module, adapter: str) -> dict[str, torch.Tensor]:
    """The tensors of one adapter, keyed as in a tuner file: ``<logical op>.tuners.<tuner>.<tensor>`` for its tuners
    (whatever else wraps the op), ``petl_sources.<key>.<tensor>`` for its weight sources, and for ``'default'`` the
    logical names of the backbone tensors it trains directly (with their modules' BatchNorm statistics)."""
    if adapter not in adapter_plans(model):
        raise KeyError(f'no adapter named {adapter!r}; adapters: {list_adapters(model)}')
    state = {}
    for op in tuned_ops(model):
        if adapter in op.tuners:
            group = op.tuners[adapter]
            state.update((f'{op.op.name}.tuners.{n}', t) for n, t in group.named_parameters())
            state.update((f'{op.op.name}.tuners.{n}', t) for n, t in group.named_buffers())
    sources = getattr(model, SOURCES_ATTR, None)
    if sources is not None and adapter in sources:
        state.update((f'{SOURCES_ATTR}.{n}', t) for n, t in sources[adapter].state_dict(keep_vars=True).items())
    if adapter == DEFAULT:
        inside = frozenset(id(m) for op in tuned_ops(model) for m in op.tuners.modules())
        for name, t in _trained_state(model, inside | _sources_ids(model)).items():
            logical = logical_param_name(name, model)
            if logical is not None:
                state[logical] = t
    return state


def _sources_ids(model: nn.Module) -> frozenset[int]:
    sources = getattr(model, SOURCES_ATTR, None)
    return frozenset(id(m) for m in sources.modules()) if sources is not None else frozenset()


def _owner_state(owner: nn.Module | None, backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The trained state of ``owner`` outside ``backbone`` (dense task decoders), keyed ``owner.<name>``."""
    if owner is None:
        return {}
    inside = frozenset(id(m) for m in backbone.modules())
    return {OWNER_PREFIX + n: t for n, t in _trained_state(owner, inside).items()}


def _which(model: nn.Module, adapter: str | None) -> str:
    if adapter is not None:
        return adapter
    active = active_adapters(model)
    if len(active) != 1:
        raise ValueError(f'adapters {active} are active; name the one to save: save_tuners(model, path, adapter=...)')
    return active[0]


def save_tuners(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None,
                owner: nn.Module | None = None, adapter: str | None = None) -> Path:
    """Write one adapter's tensors as safetensors, with its plan as metadata (default: the active adapter).

    ``extra``: JSON-serialisable information stored with it (the training config, metrics).
    ``owner``: the model holding this backbone; its trainable parameters outside the backbone (the task decoders
    of a ``MultiTaskDenseModel``) are stored too, as ``owner.<name>``, so one file restores the whole tuned model.
    """
    if not adapter_plans(model):
        raise RuntimeError('model has no tuners; call petl_vision.apply_tuners(model, plan) first')
    adapter = _which(model, adapter)
    if any(op.merged for op in tuned_ops(model)):
        raise RuntimeError('tuners are merged into the backbone; call unmerge_tuners(model) before saving')
    plan = adapter_plans(model)[adapter]
    state = {**adapter_state(model, adapter), **_owner_state(owner, model)}
    # own copies: views of FSDP's unsharded flat parameter must not be pinned by the digest's numpy views
    tensors = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state.items()}
    meta = {'format': FILE_FORMAT, 'petl_vision': __version__, 'plan': json.dumps(plan['plan']),
            'trainable': json.dumps(plan['trainable']), 'backbone': json.dumps(backbone_fingerprint(model)),
            'extra': json.dumps(extra or {}), 'digest': tensors_digest(tensors), 'adapter': adapter}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, safetensors_bytes(tensors, metadata=meta))
    return path


def read_tuner_file(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata with plan/trainable/backbone decoded, tensors) of a tuner file; a clear error if it is not one,
    or if its tensors do not match the digest written with them."""
    try:
        with safe_open(str(path), framework='pt') as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except FileNotFoundError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f'{path} is not a readable safetensors tuner file ({e}); re-download or re-save it') from e
    fmt = meta.get('format')
    if fmt != FILE_FORMAT and fmt not in MIGRATIONS:
        raise ValueError(f'{path} is a safetensors file but not a petl_vision tuner file (format {fmt!r}); write it '
                         'with petl_vision.save_tuners')
    if 'digest' in meta and tensors_digest(tensors) != meta['digest']:
        raise ValueError(f'{path} is damaged: its tensors do not match the digest written when it was saved '
                         '(a changed or truncated file); re-download it or save it again')
    decoded = {k: json.loads(meta[k]) for k in _JSON_KEYS}
    decoded['petl_vision'] = meta.get('petl_vision')
    decoded['format'] = fmt
    while decoded['format'] != FILE_FORMAT:
        decoded, tensors = MIGRATIONS[decoded['format']](decoded, tensors)
    return decoded, tensors


def load_tuners(model: nn.Module, path: str | Path, owner: nn.Module | None = None,
                adapter: str | None = None, replace: bool = False) -> nn.Module:
    """Load a file written by :func:`save_tuners`.

    Without ``adapter``: as the ``'default'`` adapter (a fresh backbone gets the file's plan applied first). With
    ``adapter='name'``: the file's adapter is added under that name beside the adapters already there; with
    ``replace=True`` an existing adapter of that name and the same plan takes the file's tensors instead (a best
    checkpoint restored into a live model).
    ``owner``: the model holding this backbone; the file's ``owner.<name>`` tensors (task decoders) are loaded into
    it. Without ``owner`` they are left out (the backbone alone is restored). A file that does not fit changes
    nothing: an adapter added for it is taken off again.
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
    target = adapter or DEFAULT
    plans = adapter_plans(model)
    if adapter is not None and adapter in plans and not replace:
        raise ValueError(f'model already has an adapter named {adapter!r}; load {path} under another name, '
                         f'delete_adapter(model, {adapter!r}) first, or pass replace=True to overwrite its tensors')
    current = plans.get(target, {}).get('plan') if adapter is None or replace else None
    if current is not None and current != meta['plan']:
        raise ValueError(f'{path} holds tuners for plan {meta["plan"]} but the model was tuned with {current}; '
                         'load it onto a fresh backbone (the plan is rebuilt from the file), or as another adapter '
                         '(load_tuners(model, path, adapter="name"))')
    grads = {p: p.requires_grad for p in model.parameters()}
    added = target not in plans
    if added:
        if target != DEFAULT and (meta['trainable'] or any(e.get('type') in ('BitFit', 'Full') for e in meta['plan'])):
            raise ValueError(f'{path} trains backbone tensors directly (BitFit, full or '
                             f'trainable={meta["trainable"]}); '
                             "load it as the 'default' adapter (a named adapter holds those as deltas)")
        add_adapter(model, target, meta['plan'], meta['trainable'])
    targets = [(adapter_state(model, target), tensors)]
    if owner is not None:
        targets.append((_owner_state(owner, model), owned))
    try:  # check everything before copying anything: a bad file changes nothing
        for state, saved_tensors in targets:
            _check_fits(path, state, saved_tensors)
    except ValueError:
        if added:
            delete_adapter(model, target)
            for p, flag in grads.items():
                p.requires_grad_(flag)
        raise
    with torch.no_grad():
        for state, saved_tensors in targets:
            for k, t in saved_tensors.items():
                state[k].copy_(t)
    return model


def _check_fits(path, state: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> None:
    missing, unexpected = sorted(set(state) - set(saved)), sorted(set(saved) - set(state))
    if missing or unexpected:
        raise ValueError(f'{path} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}')
    for k, t in saved.items():
        if state[k].shape != t.shape:
            raise ValueError(f'{path}: {k} has shape {tuple(t.shape)}, model expects {tuple(state[k].shape)}')


def _from_v1(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Format 1 (no digest, module-path keys) attached VPT-shallow and Bypass to the block stack itself
    (``blocks``): format 2 puts them on every block (``blocks.*``; VPT with ``shallow=True``, its tokens on the
    first block; the Bypass's i-th lateral/vertical adapters on block i)."""
    plan, stacks = [], {}
    for entry in meta['plan']:
        entry = dict(entry)
        targets = entry.get('targets')
        if entry.get('type') in ('VPT', 'Bypass') and isinstance(targets, str) and targets.endswith('blocks'):
            stacks[targets] = entry.get('name') or entry['type'].lower()
            entry['targets'] = f'{targets}.*'
            if entry['type'] == 'VPT':
                entry['shallow'] = True
        plan.append(entry)
    out = {}
    for key, t in tensors.items():
        out[_logical_key(_v1_key(key, stacks))] = t
    return {**meta, 'plan': plan, 'format': FILE_FORMAT}, out


def _logical_key(key: str) -> str:
    """Format 1 keyed tensors by module path, with the ``base`` level of every wrapped op: format 2 uses logical
    op names (the same whichever other ops are wrapped)."""
    head, sep, tail = key.partition('.tuners.')
    return '.'.join(p for p in head.split('.') if p != 'base') + sep + tail


def _v1_key(key: str, stacks: dict[str, str]) -> str:
    for stack, name in stacks.items():
        prefix = f'{stack}.tuners.{name}.'
        if key.startswith(prefix):
            rest = key[len(prefix):]  # 'tokens' or 'lateral.3.down.weight'
            part, _, tail = rest.partition('.')
            if part in ('lateral', 'vertical'):
                index, _, leaf = tail.partition('.')
                return f'{stack}.{index}.tuners.{name}.{part}.{leaf}'
            return f'{stack}.0.tuners.{name}.{rest}'
    return key


MIGRATIONS: dict[str, Callable[[dict, dict], tuple[dict, dict]]] = {'petl_vision.tuners/1': _from_v1}
