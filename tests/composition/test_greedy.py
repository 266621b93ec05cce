"""The sign-guided greedy mix (petl_vision/composition/greedy.py): candidates join in order while the mixture's
sign difference stays <= threshold and/or a validation score improves; the first failure stops; the result is the
uniform average of the members."""
import pytest
import torch

import petl_vision as pv
from petl_vision.composition import greedy_mix, sign_difference
from petl_vision.tuners import tuned_ops
from tests.conftest import tiny_vit

LORA = [{'type': 'LoRA', 'rank': 2}]


def model_with(deltas: dict[str, torch.Tensor]):
    """Adapters whose LoRA updates have chosen signs: every column of B is b, every row of A is a, so on every op
    dW = s B A is a positive multiple of b a^T (sign pattern sign(b) sign(a)^T)."""
    model = tiny_vit().eval()
    for name, (b, a) in deltas.items():
        pv.add_adapter(model, name, LORA)
        with torch.no_grad():
            for op in tuned_ops(model):
                lora = op.tuners[name]['lora']
                lora.lora_B.copy_(b[:lora.lora_B.shape[0], None].expand_as(lora.lora_B))
                lora.lora_A.copy_(a[None, :lora.lora_A.shape[1]].expand_as(lora.lora_A))
    return model


def dw(model, name):
    return [op.tuners[name]['lora'].task_vector()['delta_weight'] for op in tuned_ops(model) if name in op.tuners]


@pytest.fixture
def four():
    g = torch.Generator().manual_seed(0)
    b, a = torch.randn(192, generator=g), torch.randn(64, generator=g)
    flip = torch.where(torch.arange(64) < 16, -1.0, 1.0)  # a quarter of the columns with the other sign
    return model_with({'p': (b, a), 'q': (b, a * 2), 'r': (b, a * flip), 's': (b, -a)})


def test_threshold_stops_at_the_first_candidate_that_raises_the_sign_difference(four):
    model = four
    result = greedy_mix(model, ['p', 'q', 'r', 's'], 'mix', threshold=0.1)
    # p, q agree everywhere (k-way 0); adding r: a quarter of r's entries disagree with the elected sign -> 1/12
    assert result.members == ['p', 'q', 'r']
    assert [s['accepted'] for s in result.steps] == [True, True, True, False]
    assert result.steps[2]['sign_difference'] == pytest.approx(sign_difference(model, ['p', 'q', 'r']).kway)
    assert result.steps[2]['sign_difference'] == pytest.approx(1 / 12, abs=1e-6)
    assert result.steps[3]['sign_difference'] > 0.1 and 'threshold' in result.steps[3]['reason']
    mixed, parts = dw(model, 'mix'), [dw(model, n) for n in ('p', 'q', 'r')]
    for i, m in enumerate(mixed):  # the uniform average of the members
        assert torch.allclose(m, sum(p[i] for p in parts) / 3, atol=1e-6)
    assert '__greedy_trial' not in pv.list_adapters(model)
    pairwise = greedy_mix(model, ['p', 'q', 'r', 's'], 'mix2', threshold=0.1, measure='pairwise')
    assert pairwise.members == ['p', 'q']  # mean pairwise with r: (0 + 1/4 + 1/4) / 3 = 1/6 > 0.1


def test_validation_callback_adds_while_the_score_improves(four):
    model = four
    scores = {('p',): 0.5, ('p', 'q'): 0.6, ('p', 'q', 'r'): 0.6, ('p', 'q', 'r', 's'): 0.9}
    seen = []

    def evaluate(m, adapter):
        assert adapter in pv.list_adapters(m)
        members = next(k for k in scores if len(k) == len(seen) + 1)
        seen.append(adapter)
        return scores[members]

    result = greedy_mix(model, ['p', 'q', 'r', 's'], 'mix', evaluate=evaluate)
    assert result.members == ['p', 'q']  # r does not beat 0.6: stop (s is never tried)
    assert [s['score'] for s in result.steps] == [0.5, 0.6, 0.6]
    assert len(seen) == 3 and pv.list_adapters(model)[-1] == 'mix'


def test_bad_arguments_are_refused(four):
    with pytest.raises(ValueError, match='threshold=.*evaluate='):
        greedy_mix(four, ['p', 'q'], 'mix')
    with pytest.raises(ValueError, match='more than once'):
        greedy_mix(four, ['p', 'p'], 'mix', threshold=0.5)
    with pytest.raises(ValueError, match='measure must be'):
        greedy_mix(four, ['p', 'q'], 'mix', threshold=0.5, measure='cosine')
    with pytest.raises(ValueError, match='weights='):
        greedy_mix(four, ['p', 'q'], 'mix', threshold=0.5, weights=[1, 2])
    assert 'mix' not in pv.list_adapters(four)
