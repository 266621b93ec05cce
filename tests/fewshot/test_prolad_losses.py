import math

import pytest
import torch

from petl_vision.fewshot import (adaptive_coefficient, cosine_logits, distillation_loss, mean_pairwise_cosine,
                                 prolad_coefficient, prototype_logits, prototype_loss, prototypes, stage2_loss,
                                 support_similarity)

SUPPORT = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
SUPPORT_Y = torch.tensor([0, 0, 1])


def test_prototypes_are_class_means():
    torch.testing.assert_close(prototypes(SUPPORT, SUPPORT_Y, 2), torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match='cover every class'):
        prototypes(SUPPORT, torch.tensor([0, 0, 2]), 3)


def test_cosine_and_l2_logits():
    protos = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    query = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = torch.tensor([[10.0, 0.0], [10 / math.sqrt(2), 10 / math.sqrt(2)]])
    torch.testing.assert_close(cosine_logits(query, protos), expected)
    torch.testing.assert_close(cosine_logits(query, protos, scale=1.0), expected / 10)
    torch.testing.assert_close(prototype_logits(query, protos, 'l2'), torch.tensor([[-1.0, -5.0], [-2.0, -2.0]]))
    with pytest.raises(ValueError, match="choose one of \\('cos', 'l2'\\)"):
        prototype_logits(query, protos, 'euclid')


def test_prototype_loss_matches_hand_computation():
    query = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    # logits: [10, 0] and 10 * [1, 2] / sqrt(5); both rows are classified correctly
    expected = (math.log1p(math.exp(-10.0)) + math.log1p(math.exp(-10 / math.sqrt(5)))) / 2
    loss, acc = prototype_loss(SUPPORT, SUPPORT_Y, query, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert acc == 1.0
    _, acc = prototype_loss(SUPPORT, SUPPORT_Y, query, torch.tensor([1, 1]))
    assert acc == 0.5
    loss, _ = prototype_loss(SUPPORT, SUPPORT_Y, torch.tensor([[1.0, 0.0]]), torch.tensor([0]), distance='l2')
    assert loss.item() == pytest.approx(math.log1p(math.exp(-4.0)), rel=1e-5)  # logits [-1, -5]


@pytest.mark.parametrize('l0, inter, feat, expected', [
    (2.0, 0.6, 0.4, math.exp(-2.0 * 0.7 ** 2)),  # 1 - 1.5 * 0.2 = 0.7
    (0.5, 0.1, 0.5, math.exp(-0.5 * 1.6 ** 2)),  # 1 - 1.5 * (-0.4) = 1.6
    (3.0, 0.9, 0.9 - 2 / 3, 1.0),  # inter - feat = 2/3 cancels the bracket
    (0.0, 0.3, 0.8, 1.0),  # a frozen backbone with zero loss: pure distillation
    (-1.0, 0.5, 0.5, 1.0),  # exp(1) > 1 is clipped to 1
])
def test_adaptive_coefficient(l0, inter, feat, expected):
    assert adaptive_coefficient(l0, inter, feat) == pytest.approx(expected, abs=1e-12)


def test_adaptive_coefficient_accepts_tensors():
    assert adaptive_coefficient(torch.tensor(2.0), torch.tensor(0.6), 0.4) == pytest.approx(math.exp(-0.98))


def test_mean_pairwise_cosine():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = 1 / math.sqrt(2)  # cos of [1, 1] with either axis
    assert mean_pairwise_cosine(x, 'distinct') == pytest.approx((0 + c + c) / 3)
    # triu(-1): diagonal (3 ones), upper pairs (0, c, c), neighbours below (0, c): 8 entries
    assert mean_pairwise_cosine(x, 'replication') == pytest.approx((3 + 3 * c) / 8)
    assert mean_pairwise_cosine(x[:1], 'replication') == pytest.approx(1.0)
    with pytest.raises(ValueError, match='at least 2 rows'):
        mean_pairwise_cosine(x[:1], 'distinct')
    with pytest.raises(ValueError, match="unknown pairs 'all'"):
        mean_pairwise_cosine(x, 'all')


FEATS = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_support_similarity():
    sim = support_similarity(FEATS, LABELS, 'distinct')
    assert sim.inter_sim == pytest.approx(0.0)  # prototypes [2, 0] and [0, 3] are orthogonal
    assert sim.feat_sim == pytest.approx(2 / 6)  # 2 same-class pairs of 6 have cosine 1
    sim = support_similarity(FEATS, LABELS)
    assert sim.inter_sim == pytest.approx(2 / 4)  # 2x2: every entry kept, diagonal ones
    assert sim.feat_sim == pytest.approx(8 / 13)  # 4 diagonal + 2 upper + 2 of 3 neighbours below, 13 entries


def test_prolad_coefficient_from_frozen_features():
    l0 = math.log1p(math.exp(-10.0))  # each support row: logits 10 for its class, 0 for the other
    expected = math.exp(-l0 * (1 - 1.5 * (2 / 4 - 8 / 13)) ** 2)
    assert prolad_coefficient(FEATS, LABELS) == pytest.approx(expected, rel=1e-6)
    expected = math.exp(-l0 * (1 - 1.5 * (0 - 1 / 3)) ** 2)
    assert prolad_coefficient(FEATS, LABELS, pairs='distinct') == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_is_mean_cosine_distance_to_a_fixed_teacher():
    student = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = distillation_loss(student, teacher)
    assert loss.item() == pytest.approx((0 + 1 - 1 / math.sqrt(2)) / 2)
    loss.backward()
    assert teacher.grad is None and student.grad is not None
    with pytest.raises(ValueError, match='same shape'):
        distillation_loss(student, teacher[:1])


def test_stage2_loss():
    l_proto, l_distill = torch.tensor(2.0), torch.tensor(0.5)
    assert stage2_loss(l_proto, l_distill, 0.25).item() == pytest.approx(0.75 * 1.5 * 2.0 + 0.25 * 0.5)
    assert stage2_loss(l_proto, l_distill, 0.0).item() == pytest.approx(3.0)
    assert stage2_loss(l_proto, l_distill, 1.0).item() == pytest.approx(0.5)
