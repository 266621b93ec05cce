"""The chunked, selection-free merging path (petl_vision/composition/merging.py) gives the results of the direct
implementation it replaced (kept here as the reference: kthvalue threshold, tie cumsum, whole-tensor masks), for
ties at the threshold, zeros, rows whose sampled bracket misses, chunk boundaries, every method and sign rule."""
import pytest
import torch

from petl_vision.composition import merging


def reference_mask(rows: torch.Tensor, density: float) -> torch.Tensor:
    n, m = rows.shape
    k = int(density * m)
    if k <= 0:
        return torch.zeros_like(rows, dtype=torch.bool)
    magnitude = rows.abs()
    threshold = magnitude.kthvalue(m - k + 1, dim=1, keepdim=True).values
    mask = magnitude > threshold
    short = k - mask.sum(1, keepdim=True)
    at = magnitude == threshold
    at &= at.cumsum(1) <= short
    return mask | at


def reference_merge(stack, weights, method, density, rule, generator):
    rows = stack.reshape(stack.shape[0], -1)
    w = weights.to(rows.dtype)
    if method in merging.LINEAR:
        return (rows * w[:, None]).sum(0)
    if method in ('magnitude_prune', 'ties'):
        kept = rows * reference_mask(rows, density)
    elif density == 0:
        return torch.zeros(rows.shape[1])
    else:
        keep = torch.stack([torch.bernoulli(torch.full_like(r, density), generator=generator) for r in rows])
        kept = rows * keep / density
    if method in ('magnitude_prune', 'dare_linear'):
        return (kept * w[:, None]).sum(0)
    mass = kept.sum(0) if rule == 'total' else kept.sign().sum(0)
    elected = torch.where(mass >= 0, 1.0, -1.0)
    agree = kept.sign() == elected
    return torch.where(agree, kept * w[:, None], 0).sum(0) / agree.sum(0).clamp(min=1)


def cases():
    """Rows with many tied magnitudes (small integers), zeros, one huge entry, and plain Gaussian rows."""
    g = torch.Generator().manual_seed(0)
    tied = torch.randint(-3, 4, (5, 997), generator=g).float()
    spiky = torch.randn(4, 1500, generator=g) * torch.where(torch.rand(4, 1500, generator=g) < 0.01, 1e4, 1e-3)
    plain = torch.randn(3, 40, 50, generator=g)
    return {'tied': tied, 'spiky': spiky, 'plain': plain, 'zeros': torch.zeros(2, 64)}


@pytest.fixture(params=['default', 'small'])
def sizes(request, monkeypatch):
    """The shipped chunk and sample sizes, and tiny ones: many chunks, drops across chunk boundaries, brackets
    from 16-entry samples that often miss (the exact fallback)."""
    if request.param == 'small':
        monkeypatch.setattr(merging, '_CHUNK', 64)
        monkeypatch.setattr(merging, '_SAMPLE', 16)
    return request.param


@pytest.mark.parametrize('density', [0.0, 0.01, 0.3, 0.5, 0.999, 1.0])
def test_mask_and_trim_equal_the_reference_exactly(sizes, density):
    for name, stack in cases().items():
        rows = stack.reshape(stack.shape[0], -1)
        mask = merging.magnitude_mask(rows, density)
        assert torch.equal(mask, reference_mask(rows, density)), name
        assert mask.sum(1).tolist() == [int(density * rows.shape[1])] * rows.shape[0]
        assert torch.equal(merging.trim(rows, density), rows * reference_mask(rows, density)), name


@pytest.mark.parametrize('method', merging.METHODS)
@pytest.mark.parametrize('rule', merging.SIGN_RULES)
def test_merges_equal_the_reference(sizes, method, rule):
    for name, stack in cases().items():
        weights = torch.linspace(-1.0, 2.0, stack.shape[0])
        # DARE at densities whose 1/density is exact: a column sum that is zero in exact arithmetic stays zero in
        # any summation order, so the elected sign (0 counts as +) does not depend on rounding
        densities = [None] if method in merging.LINEAR else [0.0, 0.25, 0.5, 1.0] if 'dare' in method else \
            [0.0, 0.2, 0.7, 1.0]
        for density in densities:
            fast = merging.merge_stack(stack, weights, method, density, rule, torch.Generator().manual_seed(4))
            slow = reference_merge(stack, weights, method, density, rule, torch.Generator().manual_seed(4))
            assert fast.shape == stack.shape[1:]
            scale = slow.abs().max().clamp(min=1)
            assert (fast.reshape(-1) - slow).abs().max() <= 1e-6 * scale, (name, density)


def test_the_exact_fallback_runs_when_the_bracket_misses(monkeypatch):
    calls = []
    original = torch.Tensor.kthvalue

    def spy(self, *args, **kwargs):
        calls.append(self.numel())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(merging, '_SAMPLE', 4)
    monkeypatch.setattr(torch.Tensor, 'kthvalue', spy)
    rows = cases()['spiky'].reshape(4, -1)
    assert torch.equal(merging.magnitude_mask(rows, 0.3), reference_mask(rows, 0.3))
    merging.magnitude_mask(rows, 0.3)
    assert rows.shape[1] in calls  # at least one row selected over the whole row
