"""The sign-guided greedy mix (Nguyen & Le 2024, arXiv 2402.10639): adapters are added to the mixture in order of
similarity to the new domain while the mixture's fraction of sign difference stays at or below a threshold, or
while a validation score improves (or both).

Stopping, not skipping: the first candidate that breaks a condition ends the search (the order is the selection's
ranking, so later candidates are less similar). The mixture's sign difference is ``'kway'`` (its members' non-zero
entries against the TIES-elected sign, over their non-zero entries: one number for the set) or ``'pairwise'`` (the
mean pairwise fraction over its pairs), from :func:`~petl_vision.composition.signs.sign_difference`.
"""
import dataclasses
from collections.abc import Callable, Sequence

from torch import nn

from ..tuners.attach import adapter_set, delete_adapter
from .combine import CombineReport, combine_adapters
from .signs import sign_difference

MEASURES = ('kway', 'pairwise')
TRIAL = '__greedy_trial'


@dataclasses.dataclass
class GreedyMix:
    """What :func:`greedy_mix` built: the adapter ``name`` mixing ``members``; ``steps``: one dict per candidate
    tried (``adapter``, ``sign_difference`` of the mixture with it, ``score`` or None, ``accepted``, ``reason``)."""

    name: str
    members: list[str]
    steps: list[dict]
    report: CombineReport


def greedy_mix(model: nn.Module, ordered: Sequence[str], name: str, threshold: float | None = None,
               evaluate: Callable[[nn.Module, str], float] | None = None, measure: str = 'kway',
               method: str = 'linear', **combine) -> GreedyMix:
    """Add adapter ``name``: the greedy mixture of ``ordered`` (most similar first, e.g. the names of
    ``select_adapters(..., k=len(library))``).

    Args:
        threshold: a candidate joins only if the mixture's sign difference (``measure``) stays <= threshold.
        evaluate: ``evaluate(model, adapter_name) -> score`` (higher is better, e.g. validation accuracy with that
            adapter active); a candidate joins only if the mixture's score beats the best so far.
        method, combine: how members are mixed (``combine_adapters``; default the uniform average, AdapterSoup);
            ``weights=None`` always (uniform over the members).
    """
    _check(ordered, threshold, evaluate, measure, combine)
    members, steps = [ordered[0]], []
    best = _score(model, members, evaluate, method, combine)
    steps.append({'adapter': ordered[0], 'sign_difference': 0.0, 'score': best, 'accepted': True, 'reason': 'first'})
    for candidate in ordered[1:]:
        trial = [*members, candidate]
        fsd = _mixture_sign_difference(model, trial, measure)
        step = {'adapter': candidate, 'sign_difference': fsd, 'score': None, 'accepted': False}
        steps.append(step)
        if threshold is not None and fsd > threshold:
            step['reason'] = f'sign difference {fsd:.4f} > threshold {threshold}'
            break
        score = _score(model, trial, evaluate, method, combine)
        step['score'] = score
        if evaluate is not None and score <= best:
            step['reason'] = f'score {score:.4f} does not beat {best:.4f}'
            break
        members, best = trial, score
        step.update(accepted=True, reason='joins')
    report = combine_adapters(model, members, None, name, method=method, **combine)
    return GreedyMix(name, members, steps, report)


def _check(ordered, threshold, evaluate, measure, combine) -> None:
    if not ordered:
        raise ValueError('greedy_mix needs at least one candidate adapter (ordered most similar first)')
    if len(set(ordered)) != len(ordered):
        raise ValueError(f'candidates appear more than once in {list(ordered)}')
    if threshold is None and evaluate is None:
        raise ValueError('give threshold= (a maximum sign difference), evaluate= (a validation score callback) or both;'
                         ' without either every candidate would join (use combine_adapters for that)')
    if measure not in MEASURES:
        raise ValueError(f'measure must be one of {MEASURES}, got {measure!r}')
    if 'weights' in combine:
        raise ValueError('greedy_mix averages its members uniformly; weights= cannot be given')


def _mixture_sign_difference(model: nn.Module, names: list[str], measure: str) -> float:
    signs = sign_difference(model, names)
    if measure == 'kway':
        return signs.kway
    n = len(names)
    return float(signs.pairwise.sum() - signs.pairwise.diagonal().sum()) / (n * (n - 1))


def _score(model: nn.Module, members: list[str], evaluate, method: str, combine: dict) -> float | None:
    """The validation score of the mixture of ``members`` (built as a temporary adapter, then taken off; the
    model's active adapters and their weights are given back, whatever ``evaluate`` activated)."""
    if evaluate is None:
        return None
    state = adapter_set(model)
    active, weights = list(state.active), state.weights
    combine_adapters(model, members, None, TRIAL, method=method, **combine)
    try:
        return float(evaluate(model, TRIAL))
    finally:
        delete_adapter(model, TRIAL)
        state = adapter_set(model)
        if all(a in state.names for a in active):
            state.active, state.weights = active, weights
