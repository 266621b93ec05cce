"""Per-episode adaptation on the support set: the training loop shared by ProLAD, TSA and the core tuners.

TSA / URL / ProLAD adapt by treating the support set as its own query set: features of the support images,
class prototypes from them, the cosine prototype loss of every support image against the prototypes
(:func:`~petl_vision.fewshot.prototypes.prototype_loss`). The support set is one batch (full-batch training).
"""
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from petl_vision.fewshot.prototypes import cosine_logits, prototype_loss, prototypes
from petl_vision.tuners import tuned_ops

Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, float]]
"""``objective(support_features (S, D), support_labels (S,)) -> (loss, support accuracy)``."""

OPTIMIZERS = {'adadelta': torch.optim.Adadelta, 'adam': torch.optim.Adam, 'sgd': torch.optim.SGD}


@dataclass(frozen=True)
class SupportSchedule:
    """How long to adapt: up to ``max_iter`` full-batch steps; with ``patience``, stop once the support accuracy
    has exceeded ``threshold`` on more than ``patience`` steps (ProLAD's replication: 100, 25, 0.99).
    ``patience=None`` runs ``max_iter`` steps (TSA: 40)."""

    max_iter: int = 100
    patience: int | None = 25
    threshold: float = 0.99
    optimizer: str = 'adadelta'

    def __post_init__(self):
        if self.max_iter < 1 or (self.patience is not None and self.patience < 0):
            raise ValueError(f'SupportSchedule needs max_iter >= 1 and patience >= 0 or None, got {self}')
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f'unknown optimizer {self.optimizer!r}; choose one of {sorted(OPTIMIZERS)}')


@dataclass(frozen=True)
class FitResult:
    iterations: int
    support_accuracy: float  # at the last step, before its update


def prototype_objective(distance: str = 'cos') -> Objective:
    """The support set's prototype loss against itself."""
    def objective(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        return prototype_loss(features, labels, features, labels, distance)

    return objective


def tuner_parameters(model: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
    """Parameters of the tuners called ``names`` (plan ``name``) in every op of ``model``."""
    names = set(names)
    params = [p for op in tuned_ops(model) for _, n, t in op.all_tuners() if n in names for p in t.parameters()]
    if not params:
        raise ValueError(f'no tuner named {sorted(names)} has parameters; attached: '
                         f'{sorted({n for op in tuned_ops(model) for _, n, _ in op.all_tuners()})}')
    return params


def fit_support(model: nn.Module, groups: Sequence[dict], support_x: torch.Tensor, support_y: torch.Tensor,
                objective: Objective, schedule: SupportSchedule) -> FitResult:
    """Full-batch training of the parameter ``groups`` (``{'params': [...], 'lr': float}``) on the support set.

    ``model`` maps inputs (S, ...) to features (S, D); its train/eval modes are the caller's (the frozen backbone
    stays in eval mode; ProLAD puts only its episode norms in training mode).
    """
    params = [p for g in groups for p in g['params']]
    for p in params:
        p.requires_grad_(True)
    optimizer = OPTIMIZERS[schedule.optimizer](list(groups))
    hits, accuracy, steps = 0, 0.0, 0
    while steps < schedule.max_iter:
        optimizer.zero_grad(set_to_none=True)
        loss, accuracy = objective(model(support_x), support_y)
        loss.backward()
        optimizer.step()
        steps += 1
        if schedule.patience is not None and accuracy > schedule.threshold:
            hits += 1
            if hits > schedule.patience:
                break
    return FitResult(steps, accuracy)


@torch.no_grad()
def predict_by_prototypes(model: nn.Module, support_x: torch.Tensor, support_y: torch.Tensor,
                          query_x: torch.Tensor, n_way: int) -> torch.Tensor:
    """Cosine nearest-centroid logits (Q, N) with ``model`` in eval mode."""
    model.eval()
    protos = prototypes(model(support_x), support_y, n_way)
    return cosine_logits(model(query_x), protos)
