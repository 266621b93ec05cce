"""ProLAD's progressive learning with adaptive distillation, per episode (Yang, Kim, Yun, AAAI 2024).

Attach the adapters once (:func:`attach_prolad`), then let :class:`ProLAD` adapt them on each episode:

1. ``a`` from the *frozen* backbone's support features (:func:`~.prolad_losses.prolad_coefficient`);
2. stage 1 trains TA and ``beta_ta`` with the support set's prototype loss (TAN off);
3. the teacher: the support features of the stage-1 model (TA on, ``beta_ta``), without gradient;
4. stage 2 switches TAN and ``beta_tan`` on (``beta_ta`` off) and trains TA, TAN and ``beta_tan`` with
   ``(1 - a) * 1.5 * L_proto + a * L_distill(student, teacher)``; TAN's norms use the support batch's statistics
   and keep a running estimate of them, which the queries are normalised with;
5. the queries are classified by cosine nearest centroid on the stage-2 features.

Adadelta with one learning rate per group (replication: TA 0.05, TAN 0.05, beta 0.1); each stage runs up to
100 iterations and stops once the support accuracy has exceeded 99% on more than 25 of them. Every episode
re-initialises the adapters and resets TAN's statistics first, so episodes do not depend on each other even
without :class:`~.evaluator.FewShotEvaluator` (which also restores the model after every episode).
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from petl_vision.backbones import describe
from petl_vision.fewshot.adaptation import (FitResult, SupportSchedule, fit_support, predict_by_prototypes,
                                            prototype_objective, tuner_parameters)
from petl_vision.fewshot.evaluator import embed
from petl_vision.fewshot.prolad_losses import Pairs, distillation_loss, prolad_coefficient, stage2_loss
from petl_vision.fewshot.prototypes import prototype_loss
from petl_vision.tuners import apply_tuners, reset_tuners, set_tuners_active, set_tuners_enabled, tuned_ops
from petl_vision.tuners.prolad import PreClassifierAlignment, TA, TAN

PROLAD_TUNERS = ('ta', 'tan', 'beta_ta', 'beta_tan')


def prolad_plan(model: nn.Module, ta_targets: str | list[str] | None = None,
                tan_targets: str | list[str] | None = None, feature_op: str | None = None) -> list[dict]:
    """TA, TAN and the two alignment maps; targets default to the backbone descriptor's (ResNet: every 3x3 conv
    for TA, each block's last 3x3 conv for TAN, the last block for beta; ViT/Swin: attn.proj and mlp.fc2 for
    TA, the MLP for TAN, the final norm for beta)."""
    spec = describe(model)
    beta = feature_op or PreClassifierAlignment.default_targets(spec)
    return [{'type': 'TA', 'name': 'ta', 'targets': ta_targets or TA.default_targets(spec)},
            {'type': 'TAN', 'name': 'tan', 'targets': tan_targets or TAN.default_targets(spec)},
            {'type': 'PreClassifierAlignment', 'name': 'beta_ta', 'targets': beta},
            {'type': 'PreClassifierAlignment', 'name': 'beta_tan', 'targets': beta}]


def attach_prolad(model: nn.Module, **targets) -> nn.Module:
    """``apply_tuners(model, prolad_plan(model, **targets))``; ``model`` maps images to features (no head)."""
    return apply_tuners(model, prolad_plan(model, **targets))


@dataclass
class ProLADConfig:
    """The replication's settings (Meta-Dataset, ResNet-18)."""

    lr_ta: float = 0.05
    lr_tan: float = 0.05
    lr_beta: float = 0.1
    proto_weight: float = 1.5  # stage 2's weight of the prototype loss
    pairs: Pairs = 'replication'  # which cosine pairs the coefficient averages (see prolad_losses)
    schedule: SupportSchedule = field(default_factory=SupportSchedule)


@dataclass
class EpisodeRecord:
    """What one episode's adaptation did: ``a``, the stages' iterations and support accuracies, the teacher."""

    a: float
    frozen_accuracy: float
    stage1: FitResult
    stage2: FitResult
    teacher: torch.Tensor  # (S, D) stage-1 support features


class ProLAD:
    """An :data:`~.evaluator.AdaptFn`: ``ProLAD(model)(support_x, support_y, query_x, n_way) -> logits``.

    ``model`` maps images to features and carries the ProLAD tuners (:func:`attach_prolad`). ``last`` holds the
    :class:`EpisodeRecord` of the latest episode.
    """

    def __init__(self, model: nn.Module, config: ProLADConfig | None = None):
        attached = {n for op in tuned_ops(model) for _, n, _ in op.all_tuners()}
        if not set(PROLAD_TUNERS) <= attached:
            raise ValueError(f'model lacks the ProLAD tuners {sorted(set(PROLAD_TUNERS) - attached)}; '
                             'call attach_prolad(model) first')
        self.model = model
        self.config = config or ProLADConfig()
        self.last: EpisodeRecord | None = None

    def __call__(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                 n_way: int) -> torch.Tensor:
        self.adapt(support_x, support_y)
        return predict_by_prototypes(self.model, support_x, support_y, query_x, n_way)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> EpisodeRecord:
        reset_tuners(self.model, PROLAD_TUNERS)
        a, frozen_accuracy = self.coefficient(support_x, support_y)
        stage1 = self.stage1(support_x, support_y)
        teacher = self.teacher(support_x)
        stage2 = self.stage2(support_x, support_y, teacher, a)
        self.model.eval()
        self.last = EpisodeRecord(a, frozen_accuracy, stage1, stage2, teacher)
        return self.last

    @torch.no_grad()
    def coefficient(self, support_x: torch.Tensor, support_y: torch.Tensor) -> tuple[float, float]:
        """(``a``, support accuracy) from the frozen backbone's support features."""
        set_tuners_enabled(self.model, False)
        try:
            feats = embed(self.model, support_x)
        finally:
            set_tuners_enabled(self.model, True)
        _, accuracy = prototype_loss(feats, support_y, feats, support_y)
        return prolad_coefficient(feats, support_y, self.config.pairs), accuracy

    def set_mode(self, mode: str) -> None:
        """``'ta'``: TA and beta_ta; ``'tan'``: TA, TAN and beta_tan."""
        if mode not in ('ta', 'tan'):
            raise ValueError(f"ProLAD mode is 'ta' or 'tan', got {mode!r}")
        set_tuners_active(self.model, ('tan', 'beta_tan'), mode == 'tan')
        set_tuners_active(self.model, ('beta_ta',), mode == 'ta')

    def stage1(self, support_x: torch.Tensor, support_y: torch.Tensor) -> FitResult:
        self.set_mode('ta')
        self.model.eval()
        groups = [{'params': tuner_parameters(self.model, ['ta']), 'lr': self.config.lr_ta},
                  {'params': tuner_parameters(self.model, ['beta_ta']), 'lr': self.config.lr_beta}]
        return fit_support(self.model, groups, support_x, support_y, prototype_objective(), self.config.schedule)

    @torch.no_grad()
    def teacher(self, support_x: torch.Tensor) -> torch.Tensor:
        """Support features (S, D) of the stage-1 model."""
        self.set_mode('ta')
        return embed(self.model, support_x)

    def stage2(self, support_x: torch.Tensor, support_y: torch.Tensor, teacher: torch.Tensor, a: float) -> FitResult:
        self.set_mode('tan')
        self.model.eval()
        for op in tuned_ops(self.model):  # TAN normalises with the support batch's statistics
            for _, _, tuner in op.all_tuners():
                if isinstance(tuner, TAN):
                    tuner.train()
        proto = prototype_objective()

        def objective(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
            l_proto, accuracy = proto(features, labels)
            loss = stage2_loss(l_proto, distillation_loss(features, teacher), a, self.config.proto_weight)
            return loss, accuracy

        groups = [{'params': tuner_parameters(self.model, ['ta']), 'lr': self.config.lr_ta},
                  {'params': tuner_parameters(self.model, ['tan']), 'lr': self.config.lr_tan},
                  {'params': tuner_parameters(self.model, ['beta_tan']), 'lr': self.config.lr_beta}]
        return fit_support(self.model, groups, support_x, support_y, objective, self.config.schedule)
