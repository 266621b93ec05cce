"""greedy_mix leaves the model's active adapters as they were, whatever the validation callback activates."""
import pytest

import petl_vision as pv
from petl_vision.composition import greedy_mix
from tests.composition.test_greedy import four  # noqa: F401  (fixture)


@pytest.mark.parametrize('fails', [False, True])
def test_the_active_adapters_are_restored_after_the_trials(four, fails):  # noqa: F811
    model = four
    pv.set_adapter(model, ['q', 'r'], weights=[0.25, 0.75])
    scores = iter([0.5, 0.6, 0.7, 0.8])

    def evaluate(m, adapter):
        pv.set_adapter(m, adapter)  # what a validation loop does
        if fails and adapter == '__greedy_trial':
            raise RuntimeError('validation broke')
        return next(scores)

    if fails:
        with pytest.raises(RuntimeError, match='validation broke'):
            greedy_mix(model, ['p', 'q', 's'], 'mix', evaluate=evaluate)
    else:
        greedy_mix(model, ['p', 'q', 's'], 'mix', evaluate=evaluate)
    assert pv.active_adapters(model) == ['q', 'r']
    assert pv.tuners.attach.adapter_set(model).weights == [0.25, 0.75]
    assert '__greedy_trial' not in pv.list_adapters(model)
