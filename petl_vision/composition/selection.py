"""AdapterSoup (Chronopoulou et al., Findings of EACL 2023): the uniform weight average of a selected subset of
adapters, selected here from a given list or by the cosine similarity of task vectors to a reference adapter (e.g.
one briefly trained on the new domain)."""
import torch
from torch import nn

from .combine import CombineReport, combine_adapters
from .vectors import adapter_vectors, align, stacked, template


def task_vector_similarity(model: nn.Module, names: list[str]) -> torch.Tensor:
    """(N, N) cosine similarities of the adapters' whole task vectors (every tensor of every tuner, flattened)."""
    vectors = [adapter_vectors(model, n) for n in names]
    gram = torch.zeros(len(names), len(names), dtype=torch.float64)
    for key in align(vectors, names):
        for t in template(vectors, key).vector:
            rows = stacked(vectors, key, t).reshape(len(names), -1).double()  # (N, M)
            gram += rows @ rows.t()
    norm = gram.diagonal().sqrt().clamp(min=1e-30)
    return gram / norm[:, None] / norm[None, :]


def select_by_similarity(model: nn.Module, reference: str, candidates: list[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` candidates whose task vectors are most cosine-similar to ``reference``'s, most similar first."""
    if not 1 <= k <= len(candidates):
        raise ValueError(f'k must be in 1..{len(candidates)} (the number of candidates), got {k}')
    others = [c for c in candidates if c != reference]
    sims = task_vector_similarity(model, [reference, *others])[0, 1:]
    order = sims.argsort(descending=True)[:k]
    return [(others[i], float(sims[i])) for i in order]


def adapter_soup(model: nn.Module, candidates: list[str], name: str, k: int | None = None,
                 reference: str | None = None) -> CombineReport:
    """Add ``name``: the uniform average (``w_i = 1/k``) of ``candidates``, or, with ``reference`` and ``k``, of the
    ``k`` candidates most similar to ``reference``."""
    if (reference is None) != (k is None):
        raise ValueError('give both reference and k to select by similarity, or neither to average every candidate')
    chosen = candidates if reference is None else [n for n, _ in select_by_similarity(model, reference, candidates, k)]
    return combine_adapters(model, chosen, None, name, method='linear')
