"""An adapter's task vector: the task vectors of its tuners, keyed by (logical op, tuner name).

Adapters mix entry by entry where their tuners live in the same space (``tuners/task_vectors.py``): the same key,
the same space and tensor shapes. A key one adapter lacks counts as zero only in LoRA's dense-update space (no
tuner on an op = no update, so LoRA adapters on different ops or of different ranks mix exactly); elsewhere a
missing tuner is a different plan, and refused.
"""
import dataclasses

import torch
from torch import nn

from ..tuners.attach import adapter_plans, list_adapters, tuned_ops
from ..tuners.state import adapter_state
from ..tuners.task_vectors import DENSE_DELTA, TaskVector, rebuild_entry_of, space_of, task_vector_of

Key = tuple[str, str]  # (logical op name, tuner name)


@dataclasses.dataclass
class TunerVector:
    """One tuner's task vector and what is needed to rebuild a tuner holding a vector of its space."""

    space: str
    entry: dict  # plan entry (no targets/name) of a tuner that holds any vector of this space
    vector: TaskVector


def adapter_vectors(model: nn.Module, name: str) -> dict[Key, TunerVector]:
    """The task vector of adapter ``name``, in the model's op order; a clear error for an adapter that trains
    backbone tensors directly (their task vector would need the pretrained values) or has a tuner without one."""
    if name not in adapter_plans(model):
        raise KeyError(f'no adapter named {name!r}; adapters: {list_adapters(model)}')
    direct = [k for k in adapter_state(model, name) if '.tuners.' not in k and not k.startswith('petl_sources.')]
    if direct:
        raise ValueError(f'adapter {name!r} trains backbone tensors directly ({direct[:3]}...: BitFit, full or '
                         'trainable=...), so its task vector is not stored; train it as a named adapter '
                         '(add_adapter turns these into deltas) to mix it in weight space')
    out = {}
    for op in tuned_ops(model):
        if name in op.tuners:
            for tuner_name, tuner in op.tuners[name].items():
                out[(op.op.name, tuner_name)] = TunerVector(space_of(tuner), rebuild_entry_of(tuner),
                                                            task_vector_of(tuner))
    if not out:
        raise ValueError(f'adapter {name!r} has no tuners to mix')
    return out


def plan_order(model: nn.Module, name: str) -> list[str]:
    """The tuner names of adapter ``name`` in plan order (the order sequential tuners on one op apply in)."""
    return [e.get('name') or e['type'].lower() for e in adapter_plans(model)[name]['plan']]


def align(vectors: list[dict[Key, TunerVector]], names: list[str]) -> list[Key]:
    """The keys of the combination (union, in op order); a clear error where the adapters' spaces differ."""
    keys = list(dict.fromkeys(k for v in vectors for k in v))
    for key in keys:
        have = [(n, v[key]) for n, v in zip(names, vectors) if key in v]
        first_name, first = have[0]
        for other_name, other in have[1:]:
            if other.space != first.space or _shapes(other.vector) != _shapes(first.vector):
                raise ValueError(f'adapters {first_name!r} and {other_name!r} hold different tuners as '
                                 f'{key[1]!r} on {key[0]!r} ({first.space} {_shapes(first.vector)} vs {other.space} '
                                 f'{_shapes(other.vector)}); their task vectors live in different spaces and cannot '
                                 'be mixed (LoRA of any rank mixes with LoRA)')
        if len(have) < len(names) and first.space != DENSE_DELTA:
            missing = [n for n, v in zip(names, vectors) if key not in v]
            raise ValueError(f'adapters {missing} have no tuner {key[1]!r} on {key[0]!r} (adapter {first_name!r} '
                             'has): adapters of different plans mix only where a missing tuner means no change '
                             "(LoRA's dense updates); give them the same plan")
    return keys


def stacked(vectors: list[dict[Key, TunerVector]], key: Key, tensor: str) -> torch.Tensor:
    """(N, ...) the tensor ``tensor`` of ``key`` in each adapter, zeros where an adapter lacks the key."""
    ref = next(v[key].vector[tensor] for v in vectors if key in v)
    return torch.stack([v[key].vector[tensor] if key in v else torch.zeros_like(ref) for v in vectors])


def template(vectors: list[dict[Key, TunerVector]], key: Key) -> TunerVector:
    return next(v[key] for v in vectors if key in v)


def flat(vector: dict[Key, TunerVector]) -> dict[tuple[str, str, str], torch.Tensor]:
    """{(op, tuner, tensor): tensor} of one adapter's task vector."""
    return {(*key, n): t for key, tv in vector.items() for n, t in tv.vector.items()}


def _shapes(vector: TaskVector) -> dict[str, tuple[int, ...]]:
    return {n: tuple(t.shape) for n, t in vector.items()}
