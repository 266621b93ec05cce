"""The way back: a named adapter built from task vectors (``pv.add_adapter`` + the tensors loaded in).

Each tuner is rebuilt as the tuner its space names (``rebuild_entry``: its own type for parameter spaces,
DenseDelta for LoRA's dense update, TaskAdapter for generated hyper-adapter weights) and holds the vector exactly;
with ``rank=k`` LoRA's dense updates become rank-k LoRAs (SVD, Eckart-Young error reported per op).
"""
import json

from torch import nn

from ..tuners.attach import add_adapter, delete_adapter, tuned_ops
from ..tuners.task_vectors import DENSE_DELTA, TaskVector, load_lora_factors, load_task_vector_into, low_rank
from .vectors import Key, TunerVector


def build_adapter(model: nn.Module, name: str, templates: dict[Key, TunerVector], vectors: dict[Key, TaskVector],
                  order: list[str], rank: int | None = None) -> dict[str, tuple[float, float]]:
    """Add adapter ``name`` holding ``vectors`` (one per key, in the spaces of ``templates``); ``order``: tuner names
    in plan order. Returns {'op:tuner': (error, relative error)} of the SVD truncation (empty without ``rank``). All or
    nothing: on any error the new adapter is taken off again."""
    if rank is not None and not any(t.space == DENSE_DELTA for t in templates.values()):
        raise ValueError('rank=k re-compresses LoRA dense updates, but these adapters hold none')
    add_adapter(model, name, _plan(templates, order, rank))
    try:
        return _load(model, name, templates, vectors, rank)
    except BaseException:
        delete_adapter(model, name)
        raise


def _plan(templates: dict[Key, TunerVector], order: list[str], rank: int | None) -> list[dict]:
    groups: dict[tuple[str, str], list[str]] = {}
    for (op, tuner), tv in templates.items():
        entry = {'type': 'LoRA', 'rank': rank} if rank is not None and tv.space == DENSE_DELTA else tv.entry
        groups.setdefault((tuner, json.dumps(entry, sort_keys=True)), []).append(op)
    position = {n: i for i, n in enumerate(order)}
    keys = sorted(groups, key=lambda g: position.get(g[0], len(position)))  # stable: op order within a name
    return [{**json.loads(entry), 'targets': groups[(tuner, entry)], 'name': tuner} for tuner, entry in keys]


def _load(model: nn.Module, name: str, templates: dict[Key, TunerVector], vectors: dict[Key, TaskVector],
          rank: int | None) -> dict[str, tuple[float, float]]:
    ops = {op.op.name: op for op in tuned_ops(model)}
    errors = {}
    for (op, tuner_name), vector in vectors.items():
        tuner = ops[op].tuners[name][tuner_name]
        if rank is not None and templates[(op, tuner_name)].space == DENSE_DELTA:
            B, A, error, relative = low_rank(vector['delta_weight'], rank)
            load_lora_factors(tuner, B, A)
            errors[f'{op}:{tuner_name}'] = (error, relative)
        else:
            load_task_vector_into(tuner, vector)
    return errors
