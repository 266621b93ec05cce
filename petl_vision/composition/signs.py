"""Sign analysis of task vectors (Nguyen & Le 2024, arXiv 2402.10639: the fraction of sign difference between
mixed adapters correlates negatively with the mixture's generalisation).

For adapters a, b and the entries of their task vectors:

- ``pairwise``: entries where both are non-zero and the signs differ / entries where both are non-zero;
- ``pairwise_all``: the same count / all entries (differs from ``pairwise`` only where entries are zero, i.e. after
  pruning);
- ``elected``: per adapter, its non-zero entries whose sign differs from the TIES-elected sign of the set / its
  non-zero entries; ``kway``: the same over all adapters together.

Everything is counted per tuned op (``per_layer``) and summed (overall). Counts are exact integers (matmuls of 0/1
matrices in chunks below float32's exact range).
"""
import dataclasses

import torch
from torch import nn

from .combine import prune_vectors
from .merging import elect_sign
from .vectors import Key, TunerVector, adapter_vectors, align, stacked, template

_CHUNK = 1 << 22  # entries per matmul: 0/1 products summed exactly in float32 (< 2^24)


@dataclasses.dataclass
class SignDifference:
    names: list[str]
    pairwise: torch.Tensor  # (N, N)
    pairwise_all: torch.Tensor  # (N, N)
    elected: torch.Tensor  # (N,)
    kway: float
    per_layer: dict[str, torch.Tensor]  # op -> (N, N) pairwise
    counts: dict[str, torch.Tensor]  # 'differ', 'both' (N, N), 'total' (), 'against', 'nonzero' (N,)


def sign_difference(model: nn.Module, names: list[str], majority_sign: str = 'total', density: float | None = None,
                    scope: str = 'tensor') -> SignDifference:
    """Fractions of sign difference between the task vectors of adapters ``names`` (module docstring); with
    ``density``, of their task vectors magnitude-pruned to that density first (per tensor or global ``scope``), the
    paper's pruning that removes sign conflicts."""
    vectors = [adapter_vectors(model, n) for n in names]
    if density is not None:
        vectors = [_pruned(v, density, scope) for v in vectors]
    rows: dict[str, list[torch.Tensor]] = {}
    for key in align(vectors, names):
        for t in template(vectors, key).vector:
            rows.setdefault(key[0], []).append(stacked(vectors, key, t).reshape(len(names), -1))
    return sign_difference_of(names, {op: torch.cat(r, dim=1) for op, r in rows.items()}, majority_sign)


def sign_difference_of(names: list[str], layers: dict[str, torch.Tensor], majority_sign: str = 'total'
                       ) -> SignDifference:
    """The same from plain tensors: ``layers`` = {layer: (N, M) stack of the N adapters' entries}."""
    n = len(names)
    differ, both = torch.zeros(n, n, dtype=torch.long), torch.zeros(n, n, dtype=torch.long)
    against, nonzero = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    total, per_layer = 0, {}
    for layer, stack in layers.items():
        d, b = _pair_counts(stack)
        per_layer[layer] = _ratio(d, b)
        differ, both, total = differ + d, both + b, total + stack.shape[1]
        signs = stack.sign()
        against += ((signs * elect_sign(stack, majority_sign)) < 0).sum(1)
        nonzero += (signs != 0).sum(1)
    counts = {'differ': differ, 'both': both, 'total': torch.tensor(total), 'against': against, 'nonzero': nonzero}
    return SignDifference(list(names), _ratio(differ, both), differ.double() / max(total, 1), _ratio(against, nonzero),
                          float(against.sum()) / max(int(nonzero.sum()), 1), per_layer, counts)


def _pair_counts(stack: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """stack (N, M) -> (entries with opposite signs, entries both non-zero), each (N, N) int64."""
    n = stack.shape[0]
    differ, both = torch.zeros(n, n, dtype=torch.long), torch.zeros(n, n, dtype=torch.long)
    for chunk in stack.split(_CHUNK, dim=1):
        pos, neg = (chunk > 0).float(), (chunk < 0).float()
        nz = pos + neg
        differ += (pos @ neg.t() + neg @ pos.t()).round().long()
        both += (nz @ nz.t()).round().long()
    return differ, both


def _pruned(vector: dict[Key, TunerVector], density: float, scope: str) -> dict[Key, TunerVector]:
    pruned = prune_vectors({k: tv.vector for k, tv in vector.items()}, density, scope)
    return {k: dataclasses.replace(tv, vector=pruned[k]) for k, tv in vector.items()}


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return num.double() / den.double().clamp(min=1)
