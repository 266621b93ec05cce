"""Weight-space combinations of named adapters: linear / task arithmetic, magnitude pruning, TIES, DARE, SVD.

``combine_adapters`` reads each adapter's task vector (``vectors.py``), merges every tensor across adapters
(``merging.py``, one vectorised call per tensor) and adds the result as a new named adapter (``build.py``).
Conventions in ``docs/mixing.md``.
"""
import dataclasses

import torch
from torch import nn

from ..tuners.attach import adapter_plans, add_adapter, list_adapters, tuned_ops
from ..tuners.state import adapter_state
from ..tuners.task_vectors import TaskVector
from .build import build_adapter
from .merging import LINEAR, METHODS, PRUNED, SIGN_RULES, merge_stack, trim
from .vectors import Key, TunerVector, adapter_vectors, align, plan_order, stacked, template

HEAD_MODES = ('keep', 'average')  # or the name of the adapter whose head the result takes


@dataclasses.dataclass
class CombineReport:
    """What :func:`combine_adapters` built. ``svd_error``: {'op:tuner': (||dW - dW_k||_F, relative)} with ``rank``;
    ``density``: the fraction of non-zero entries in the result's task vector."""

    name: str
    method: str
    adapters: list[str]
    weights: list[float]
    svd_error: dict[str, tuple[float, float]]
    density: float


def combine_adapters(model: nn.Module, names: list[str], weights: list[float] | None, name: str,
                     method: str = 'linear', density: float | None = None, majority_sign: str = 'total',
                     rank: int | None = None, seed: int | None = None, scale: float = 1.0,
                     heads: str = 'keep') -> CombineReport:
    """Add adapter ``name``, the weight-space combination of adapters ``names``.

    Args:
        weights: one per adapter, any sign (``[-1]`` negates an adapter); None: ``1/N`` each (AdapterSoup's uniform
            average) for the summing methods, 1 each for ``ties``/``dare_ties`` (their disjoint mean averages).
        method: ``linear`` / ``task_arithmetic`` (``scale * sum_i w_i tau_i``), ``magnitude_prune``, ``ties``,
            ``dare_linear``, ``dare_ties`` or ``svd`` (linear, then LoRA updates re-compressed to ``rank``).
        density: fraction of entries kept per tensor by the pruning methods (required there, refused elsewhere).
        majority_sign: TIES sign election, ``'total'`` (default) or ``'frequency'``.
        rank: rebuild LoRA dense updates as rank-``rank`` LoRAs (SVD; errors in the report); None: exact
            DenseDelta tuners.
        seed: DARE's draws (None: 0, so a call is reproducible).
        scale: lambda, multiplies the merged task vector.
        heads: what the result holds on the classifier (:func:`head_ops`): ``'keep'`` (default) no head tuner, so
            the model's own head stays (heads are not averaged); ``'average'`` the adapters' head tuners mixed like
            every other tuner; the name of an adapter: that adapter's head tuners, exactly (with ``rank``, a LoRA
            head is rebuilt at that rank like every other LoRA update, its error in the report).

    ``linear`` with one adapter and weight 1 returns a copy of that adapter itself (same plan, same tensors; with
    ``heads='keep'`` less its head tuners).
    """
    weights = _check(model, names, weights, name, method, density, majority_sign, rank)
    vectors = [adapter_vectors(model, n) for n in names]
    head_keys = _check_heads(model, names, vectors, heads)
    copy = method in ('linear', 'task_arithmetic') and weights == [1.0] and scale == 1 and rank is None
    if copy and (heads in ('average', names[0]) or not head_keys):
        _copy_adapter(model, names[0], name)
        return CombineReport(name, method, list(names), weights, {}, _density_of(adapter_vectors(model, name)))
    vectors = [{k: v for k, v in vec.items() if k not in head_keys} for vec in vectors] if heads != 'average' \
        else vectors
    keys = align(vectors, names)
    if not keys and heads == 'keep':
        raise ValueError(f'adapters {names} hold nothing but head tuners; heads={heads!r} leaves nothing to mix '
                         "(use heads='average' to mix the heads)")
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    w = torch.tensor(weights, dtype=torch.float64)
    merged = {key: {t: merge_stack(stacked(vectors, key, t), w, method, density, majority_sign, generator) * scale
                    for t in template(vectors, key).vector} for key in keys}
    templates = {key: template(vectors, key) for key in keys}
    if heads not in HEAD_MODES:  # one adapter's heads, as they are
        taken = adapter_vectors(model, heads)
        templates.update({k: taken[k] for k in head_keys if k in taken})
        merged.update({k: {t: x.clone() for t, x in taken[k].vector.items()} for k in head_keys if k in taken})
    errors = build_adapter(model, name, templates, merged, plan_order(model, names[0]), rank)
    return CombineReport(name, method, list(names), weights, errors, _density(merged))


def head_ops(model: nn.Module) -> set[str]:
    """The logical names of the model's classifier ops: the module ``get_classifier()`` returns (timm) and ops named
    ``head`` or ``head.*``. A *head tuner* is any tuner of an adapter on one of them (a ``LinearDelta`` from
    ``trainable=('head',)``, a LoRA on the head). Heads outside the backbone (``MultiTaskClassifier.heads[task]``,
    a study's shared head) belong to no adapter; combine_adapters never touches them."""
    get = getattr(model, 'get_classifier', None)
    classifier = get() if callable(get) else None
    return {op.op.name for op in tuned_ops(model)
            if op is classifier or op.op.name == 'head' or op.op.name.startswith('head.')}


def _check_heads(model: nn.Module, names: list[str], vectors: list[dict[Key, TunerVector]], heads) -> set[Key]:
    """The head-tuner keys of the combination (of ``names`` and of the adapter ``heads`` names); clear errors."""
    ops = head_ops(model)
    keys = {k for v in vectors for k in v if k[0] in ops}
    if not isinstance(heads, str) or (heads not in HEAD_MODES and heads not in adapter_plans(model)):
        raise ValueError(f"heads must be 'keep', 'average' or the name of an adapter whose head to take "
                         f'(adapters: {list_adapters(model)}), got {heads!r}')
    if heads in HEAD_MODES:
        return keys
    own = {k for k in adapter_vectors(model, heads) if k[0] in ops}
    if not own:
        raise ValueError(f'heads={heads!r}, but adapter {heads!r} has no head tuner (no tuner on the classifier ops '
                         f"{sorted(ops) or '(none)'}); train it with trainable=('head',) or use heads='keep'")
    return keys | own


def prune_adapter(model: nn.Module, name: str, density: float, new_name: str | None = None,
                  scope: str = 'tensor') -> CombineReport:
    """Add ``new_name`` (default ``'<name>_pruned'``): adapter ``name`` with all but the largest-magnitude
    ``density`` fraction of its task-vector entries zeroed, per tensor (``scope='tensor'``, ``k = int(density *
    numel)`` each) or over the whole adapter (``scope='global'``). LoRA's dense updates become DenseDelta tuners."""
    if scope not in ('tensor', 'global'):
        raise ValueError(f"scope must be 'tensor' or 'global', got {scope!r}")
    new_name = new_name or f'{name}_pruned'
    _check(model, [name], [1.0], new_name, 'magnitude_prune', density, 'total', None)
    vectors = adapter_vectors(model, name)
    pruned = prune_vectors({k: tv.vector for k, tv in vectors.items()}, density, scope)
    build_adapter(model, new_name, vectors, pruned, plan_order(model, name))
    return CombineReport(new_name, f'magnitude_prune/{scope}', [name], [1.0], {}, _density(pruned))


def prune_vectors(vectors: dict[Key, TaskVector], density: float, scope: str = 'tensor') -> dict[Key, TaskVector]:
    """Magnitude pruning of one adapter's task vector, per tensor or globally (top ``int(density * total)``)."""
    if scope == 'tensor':
        return {k: {n: trim(t.reshape(1, -1), density).reshape(t.shape) for n, t in v.items()}
                for k, v in vectors.items()}
    items = [(k, n, t) for k, v in vectors.items() for n, t in v.items()]
    flat = trim(torch.cat([t.reshape(-1) for _, _, t in items])[None], density)[0]
    out: dict[Key, TaskVector] = {}
    for (k, n, t), part in zip(items, flat.split([t.numel() for _, _, t in items])):
        out.setdefault(k, {})[n] = part.reshape(t.shape)
    return out


def _check(model, names, weights, name, method, density, majority_sign, rank) -> list[float]:
    if not names:
        raise ValueError('name at least one adapter to combine')
    unknown = [n for n in names if n not in adapter_plans(model)]
    if unknown:
        raise KeyError(f'no adapter named {unknown}; adapters: {list_adapters(model)}')
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; one of {METHODS}')
    if method in PRUNED and (density is None or not 0 <= density <= 1):
        raise ValueError(f'method {method!r} needs density in [0, 1] (the fraction of entries kept), got {density}')
    if method in LINEAR and density is not None:
        raise ValueError(f'density={density} has no effect with method {method!r}; use magnitude_prune, ties or '
                         'dare_linear/dare_ties to prune')
    if method == 'svd' and rank is None:
        raise ValueError("method 'svd' re-compresses the combined LoRA updates: give rank=k")
    if majority_sign not in SIGN_RULES:
        raise ValueError(f'majority_sign must be one of {SIGN_RULES}, got {majority_sign!r}')
    if rank is not None and (not isinstance(rank, int) or rank < 1):
        raise ValueError(f'rank must be a positive int, got {rank!r}')
    if weights is None:
        return [1.0] * len(names) if method in ('ties', 'dare_ties') else [1.0 / len(names)] * len(names)
    if len(weights) != len(names):
        raise ValueError(f'{len(weights)} weights for {len(names)} adapters {names}')
    return [float(x) for x in weights]


def _copy_adapter(model: nn.Module, source: str, name: str) -> None:
    plan = adapter_plans(model)[source]
    add_adapter(model, name, plan['plan'], plan['trainable'])
    with torch.no_grad():
        target = adapter_state(model, name)
        for key, t in adapter_state(model, source).items():
            target[key].copy_(t)


def _density(vectors: dict[Key, TaskVector]) -> float:
    tensors = [t for v in vectors.values() for t in v.values()]
    total = sum(t.numel() for t in tensors)
    return sum(int(t.count_nonzero()) for t in tensors) / total if total else 0.0


def _density_of(vectors) -> float:
    return _density({k: tv.vector for k, tv in vectors.items()})
