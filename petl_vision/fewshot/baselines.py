"""Baselines for per-episode adaptation, in the same evaluator as ProLAD (all are :data:`~.evaluator.AdaptFn`s).

- :func:`~.evaluator.frozen_prototype_baseline`: no adaptation, cosine nearest centroid on frozen features;
- :class:`TSA`: task-specific adapters without normalisation (TA, ``1e-4 * I`` init) and the pre-classifier
  alignment, trained with the prototype loss (URL's ``tsa()``: Adadelta, lr 0.1 / beta 1.0, 40 iterations);
- :class:`LinearHead`: fine-tunes a linear classifier on the frozen features;
- :class:`TunerBaseline`: any plan of core tuners (LoRA, adapter, SSF, ...) trained with the prototype loss.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from petl_vision.backbones import describe
from petl_vision.fewshot.adaptation import (SupportSchedule, fit_support, predict_by_prototypes, prototype_objective,
                                            tuner_parameters)
from petl_vision.fewshot.evaluator import embed
from petl_vision.tuners import reset_tuners
from petl_vision.fewshot.prototypes import prototypes
from petl_vision.tuners import apply_tuners, tuned_ops
from petl_vision.tuners.prolad import PreClassifierAlignment, TA


def tsa_plan(model: nn.Module) -> list[dict]:
    """TSA's residual matrix adapters (``alpha``) and pre-classifier alignment (``beta``)."""
    spec = describe(model)
    return [{'type': 'TA', 'name': 'ta', 'init': 'eye', 'init_scale': 1e-4, 'targets': TA.default_targets(spec)},
            {'type': 'PreClassifierAlignment', 'name': 'beta', 'targets': PreClassifierAlignment.default_targets(spec)}]


@dataclass
class TSAConfig:
    lr_alpha: float = 0.1
    lr_beta: float = 1.0
    schedule: SupportSchedule = field(default_factory=lambda: SupportSchedule(max_iter=40, patience=None))


class TSA:
    """TSA's alpha + beta adapted per episode; ``model`` carries :func:`tsa_plan`'s tuners."""

    def __init__(self, model: nn.Module, config: TSAConfig | None = None):
        self.model = model
        self.config = config or TSAConfig()

    def __call__(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                 n_way: int) -> torch.Tensor:
        reset_tuners(self.model, ('ta', 'beta'))
        self.model.eval()
        groups = [{'params': tuner_parameters(self.model, ['ta']), 'lr': self.config.lr_alpha},
                  {'params': tuner_parameters(self.model, ['beta']), 'lr': self.config.lr_beta}]
        fit_support(self.model, groups, support_x, support_y, prototype_objective(), self.config.schedule)
        return predict_by_prototypes(self.model, support_x, support_y, query_x, n_way)


class TunerBaseline:
    """Core tuners adapted per episode with the prototype loss (AdamW-free Adam, lr 1e-3, ProLAD's stopping).

    ``model`` carries the tuners (``apply_tuners(model, 'lora')``); every trainable parameter is adapted and
    restored by the evaluator after each episode.
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3,
                 schedule: SupportSchedule | None = None):
        self.model = model
        self.lr = lr
        self.schedule = schedule or SupportSchedule(optimizer='adam')
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError('the model has no trainable parameter; attach tuners with apply_tuners first')

    def __call__(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                 n_way: int) -> torch.Tensor:
        self.model.eval()
        fit_support(self.model, [{'params': self.params, 'lr': self.lr}], support_x, support_y,
                    prototype_objective(), self.schedule)
        return predict_by_prototypes(self.model, support_x, support_y, query_x, n_way)


def attach_baseline(model: nn.Module, method: str) -> nn.Module:
    """Attach the tuners of a tuner baseline: ``'tsa'`` or a core preset name (``'lora'``, ``'adapter'``, ...)."""
    if tuned_ops(model):
        raise RuntimeError('model already has tuners attached; build a fresh backbone')
    return apply_tuners(model, tsa_plan(model) if method == 'tsa' else method)


class LinearHead:
    """Fine-tunes a linear head on the frozen, L2-normalised features with cross-entropy.

    The head starts as the cosine prototype classifier (rows = normalised prototypes, logits scaled by 10), so
    it begins where :func:`~.evaluator.frozen_prototype_baseline` ends; Adam, ``iters`` full-batch steps.
    """

    def __init__(self, model: nn.Module, iters: int = 100, lr: float = 1e-2, scale: float = 10.0):
        self.model, self.iters, self.lr, self.scale = model, iters, lr, scale

    def __call__(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                 n_way: int) -> torch.Tensor:
        support = F.normalize(embed(self.model, support_x), dim=-1)  # (S, D)
        query = F.normalize(embed(self.model, query_x), dim=-1)  # (Q, D)
        weight = nn.Parameter(F.normalize(prototypes(support, support_y, n_way), dim=-1))  # (N, D)
        bias = nn.Parameter(support.new_zeros(n_way))
        optimizer = torch.optim.Adam([weight, bias], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.iters):
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(self.scale * support @ weight.T + bias, support_y).backward()
                optimizer.step()
        with torch.no_grad():
            return self.scale * query @ weight.T + bias
