"""Merging rules on hand-made tensors (petl_vision/composition/merging.py), checked against hand computations and
against peft.utils.merge_utils where both take plain tensors."""
import pytest
import torch
from peft.utils import merge_utils as peft

from petl_vision.composition.merging import dare, disjoint_mean, elect_sign, magnitude_mask, merge_stack, trim

# three adapters x five entries: signed weights, zeros, a zero column sum (entry 3) and a sign tie (entry 4)
STACK = torch.tensor([[0.5, -1.0, 0.0, 2.0, 1.0],
                      [0.4, 3.0, 0.0, -2.0, -1.0],
                      [-0.1, -0.5, 0.3, 0.0, 0.0]])
W = torch.tensor([1.0, -0.5, 2.0])


def test_trim_keeps_int_density_times_numel_largest_magnitudes_per_row():
    rows = torch.tensor([[0.125, -0.75, 0.5, 0.0], [3.0, -4.0, 1.0, 2.0]])
    assert trim(rows, 0.5).tolist() == [[0.0, -0.75, 0.5, 0.0], [3.0, -4.0, 0.0, 0.0]]
    assert trim(rows, 0.74).tolist() == trim(rows, 0.5).tolist()  # k = int(0.74 * 4) = 2
    assert torch.equal(trim(rows, 1.0), rows)
    assert torch.equal(trim(rows, 0.0), torch.zeros_like(rows))
    assert magnitude_mask(rows, 0.25).sum(1).tolist() == [1, 1]


def test_elect_sign_total_frequency_and_zero_sum_counts_as_plus():
    # column sums 0.8, 1.5, 0.3, 0.0, 0.0; sign counts 1, -1, 1, 0, 0
    assert elect_sign(STACK, 'total').tolist() == [1, 1, 1, 1, 1]
    assert elect_sign(STACK, 'frequency').tolist() == [1, -1, 1, 1, 1]
    with pytest.raises(ValueError, match='majority_sign'):
        elect_sign(STACK, 'mean')


def test_disjoint_mean_divides_by_the_count_of_agreeing_entries():
    elected = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0])
    # entry 0: rows 0, 1 agree (+): (1*0.5 + -0.5*0.4) / 2 = 0.15; entry 1: rows 0, 2 (-): (-1 + 2*-0.5) / 2 = -1
    # entry 2: row 2 only: 0.6; entry 3: row 0: 2.0; entry 4: row 1: -0.5*-1 = 0.5
    expected = torch.tensor([0.15, -1.0, 0.6, 2.0, 0.5])
    assert torch.allclose(disjoint_mean(STACK, W, elected), expected)
    nothing_agrees = disjoint_mean(torch.zeros(2, 3), torch.ones(2), torch.ones(3))
    assert nothing_agrees.tolist() == [0.0, 0.0, 0.0]  # count clamped to 1: no division by zero


def test_ties_by_hand_with_signed_weights():
    # density 0.6 keeps 3 of 5 per row: row 0 -> [0, -1, 0, 2, 1], row 1 -> [0, 3, 0, -2, -1],
    # row 2 -> [-0.1, -0.5, 0.3, 0, 0]; elected (total): sums [-0.1, 1.5, 0.3, 0, 0] -> [-, +, +, +, +]
    # weighted agreeing entries: e0: row 2 -> 2*-0.1 = -0.2; e1: row 1 -> -0.5*3 = -1.5; e2: row 2 -> 0.6;
    # e3: row 0 -> 2; e4: row 0 -> 1
    merged = merge_stack(STACK, W, 'ties', density=0.6)
    assert torch.allclose(merged, torch.tensor([-0.2, -1.5, 0.6, 2.0, 1.0]))


@pytest.mark.parametrize('rule', ['total', 'frequency'])
@pytest.mark.parametrize('density', [0.0, 0.3, 0.6, 1.0])
def test_ties_and_magnitude_prune_equal_peft(rule, density):
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(7, 9, generator=g) for _ in range(4)]
    w = torch.tensor([0.7, -0.3, 1.2, 0.5])
    stack = torch.stack(tensors)
    with pytest.warns(UserWarning) if density >= 1 else _no_warning():  # PEFT warns that density 1 prunes nothing
        ours_ties, theirs_ties = merge_stack(stack, w, 'ties', density, rule), peft.ties(tensors, w, density, rule)
    assert torch.allclose(ours_ties, theirs_ties, atol=1e-6)
    with pytest.warns(UserWarning) if density >= 1 else _no_warning():
        theirs = peft.magnitude_prune(tensors, w, density)
    assert torch.allclose(merge_stack(stack, w, 'magnitude_prune', density), theirs, atol=1e-6)
    assert torch.allclose(merge_stack(stack, w, 'linear'), peft.task_arithmetic(tensors, w), atol=1e-6)


@pytest.mark.parametrize('method', ['dare_linear', 'dare_ties'])
def test_dare_equals_peft_under_the_same_seed(method):
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(6, 5, generator=g) for _ in range(3)]
    w = torch.tensor([0.5, 1.0, -0.25])
    ours = merge_stack(torch.stack(tensors), w, method, 0.4, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(7)  # PEFT draws from the global generator, tensor by tensor like ours
    theirs = getattr(peft, method)(tensors, w, 0.4)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_dare_is_seeded_keeps_about_density_and_preserves_the_mean():
    rows = torch.ones(2, 100_000)
    a = dare(rows, 0.3, torch.Generator().manual_seed(1))
    b = dare(rows, 0.3, torch.Generator().manual_seed(1))
    c = dare(rows, 0.3, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    kept = (a != 0).double().mean().item()
    assert abs(kept - 0.3) < 0.01
    values = a.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.3)
    assert abs(a.mean().item() - 1.0) < 0.03  # rescaled by 1/density: the expectation is kept
    assert torch.equal(dare(rows, 1.0, torch.Generator()), rows)
    assert torch.equal(dare(rows, 0.0, torch.Generator()), torch.zeros_like(rows))  # PEFT gives 0/0 = nan here


def test_merge_stack_keeps_shape_and_refuses_unknown_methods():
    stack = torch.randn(2, 3, 4)
    assert merge_stack(stack, torch.ones(2), 'linear').shape == (3, 4)
    with pytest.raises(ValueError, match='unknown merge method'):
        merge_stack(stack, torch.ones(2), 'average')


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_trim_keeps_exactly_k_when_magnitudes_tie_at_the_threshold():
    rows = torch.tensor([[1.0, -2.0, 2.0, 2.0, 0.5], [-3.0, 3.0, -3.0, 3.0, 3.0]])
    assert trim(rows, 0.4).tolist() == [[0.0, -2.0, 2.0, 0.0, 0.0], [-3.0, 3.0, 0.0, 0.0, 0.0]]
    assert magnitude_mask(rows, 0.6).sum(1).tolist() == [3, 3]
