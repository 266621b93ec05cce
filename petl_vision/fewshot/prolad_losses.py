"""Loss maths of ProLAD's stage 2: adaptive distillation from the stage-1 adapter (TA) to TAN.

ProLAD (Yang et al., "Leveraging Normalization Layer in Adapters With Progressive Learning and
Adaptive Distillation for Cross-Domain Few-Shot Learning", AAAI 2024,
https://arxiv.org/abs/2312.11260). Definitions follow the public replication built on TSA / URL
(``prolad.py`` and its ``models/losses.py``: ``distillation_loss(opt='cos')``, ``compute_sim``):

- stage 2 loss: ``(1 - a) * 1.5 * L_proto + a * L_distill``;
- ``L_distill``: mean over support examples of ``1 - cos(student_i, teacher_i)``, the teacher being
  the stage-1 (TA) features of the same support images;
- ``a = clip(exp(-L0 * (1 - 1.5 * (inter_sim - feat_sim))^2), 0, 1)``, where, on the *frozen*
  backbone's support features, ``L0`` is the cosine prototype loss of the support set against itself,
  ``inter_sim`` the mean cosine similarity between class prototypes and ``feat_sim`` the mean cosine
  similarity between support features (all classes together).
"""
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from petl_vision.fewshot.prototypes import prototype_loss, prototypes

Pairs = Literal['replication', 'distinct']


@dataclass(frozen=True)
class SupportSimilarity:
    """Mean cosine similarities of an episode's support features (scalars)."""

    inter_sim: float  # between class prototypes
    feat_sim: float  # between support features, all classes together


def mean_pairwise_cosine(x: torch.Tensor, pairs: Pairs = 'replication') -> float:
    """Mean of the cosine-similarity matrix of the rows of ``x`` (M, D) over the selected entries.

    ``'distinct'``: the M(M-1)/2 pairs i < j. ``'replication'``: the entries the replication averages,
    ``triu(diagonal=-1)``, i.e. j >= i - 1: the diagonal (self-similarity 1), every pair i < j and once
    more each neighbour pair (i, i-1); M(M+1)/2 + M - 1 entries. (The replication also drops entries
    that are exactly 0 from the mean; this one does not.)
    """
    sim = F.normalize(x, dim=-1) @ F.normalize(x, dim=-1).T  # (M, M)
    if pairs not in ('replication', 'distinct'):
        raise ValueError(f"unknown pairs {pairs!r}; choose 'replication' or 'distinct'")
    keep = torch.ones_like(sim, dtype=torch.bool).triu(-1 if pairs == 'replication' else 1)
    if not bool(keep.any()):
        raise ValueError(f"pairs='distinct' needs at least 2 rows, got {len(x)}")
    return sim[keep].mean().item()


def support_similarity(features: torch.Tensor, labels: torch.Tensor, pairs: Pairs = 'replication') -> SupportSimilarity:
    """``inter_sim`` and ``feat_sim`` of support ``features`` (S, D) with ``labels`` (S,) in [0, N)."""
    n_way = int(labels.max()) + 1
    return SupportSimilarity(inter_sim=mean_pairwise_cosine(prototypes(features, labels, n_way), pairs),
                             feat_sim=mean_pairwise_cosine(features, pairs))


def adaptive_coefficient(l0: float, inter_sim: float, feat_sim: float, sim_weight: float = 1.5) -> float:
    """``clip(exp(-l0 * (1 - sim_weight * (inter_sim - feat_sim))^2), 0, 1)``: the weight of distillation."""
    a = math.exp(-float(l0) * (1.0 - sim_weight * (float(inter_sim) - float(feat_sim))) ** 2)
    return min(max(a, 0.0), 1.0)


@torch.no_grad()
def prolad_coefficient(frozen_support_feats: torch.Tensor, support_labels: torch.Tensor,
                       pairs: Pairs = 'replication') -> float:
    """ProLAD's ``a`` from the frozen backbone's support features (S, D) and labels (S,) in [0, N)."""
    l0, _ = prototype_loss(frozen_support_feats, support_labels, frozen_support_feats, support_labels, 'cos')
    sim = support_similarity(frozen_support_feats, support_labels, pairs)
    return adaptive_coefficient(l0.item(), sim.inter_sim, sim.feat_sim)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(student_i, teacher_i)`` over rows; ``student``, ``teacher``: (S, D).

    The replication's ``distillation_loss(opt='cos')`` (URL's ``'cosine'`` option); the teacher is a
    fixed target (detached), as the replication computes it under ``no_grad``.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'student {tuple(student.shape)} and teacher {tuple(teacher.shape)} features must have '
                         f'the same shape: embed the same support images with both')
    return (1.0 - F.cosine_similarity(student, teacher.detach(), dim=-1)).mean()


def stage2_loss(l_proto: torch.Tensor, l_distill: torch.Tensor, a: float, proto_weight: float = 1.5) -> torch.Tensor:
    """``(1 - a) * proto_weight * l_proto + a * l_distill``, ProLAD's stage-2 objective."""
    return (1.0 - a) * proto_weight * l_proto + a * l_distill
