"""Task vectors of every tuner type (tuners/task_vectors.py and the methods on each tuner), over the named-adapters
cases (every registered type and preset x tiny backbone): an adapter rebuilt from its own task vector
(combine_adapters with w = [0.5], scale 2, heads='average': every step exact in floating point) gives the adapter's
outputs, and the spaces named in issue 15 hold what they say (LoRA: dW, SSF: (scale - 1, shift), ...)."""
import pytest
import torch

import petl_vision as pv
from petl_vision.composition import adapter_vectors, combine_adapters
from petl_vision.tuners import describe, get_tuner_cls, tuned_ops
from petl_vision.tuners.presets import resolve_plan
from petl_vision.tuners.task_vectors import low_rank
from tests.conftest import tiny_vit
from tests.tuners.test_adapters_suite import ADAPTER_CASES, BACKBONES, example_inputs, perturb, plan_of

NO_TASK_VECTOR = {'IDPT'}  # BatchNorm statistics inside: a weighted sum of its parameters is no prompt generator


def _context(plan: list[dict]) -> dict:
    ctx = {}
    for entry in plan:
        ctx.update(getattr(get_tuner_cls(entry['type']), 'example_context', dict)())
    return ctx


def _types(plan: list[dict]) -> set[str]:
    return {e['type'] for e in plan}


@pytest.mark.parametrize('case,backbone', ADAPTER_CASES)
def test_adapter_rebuilt_from_its_task_vector_gives_its_outputs(case, backbone):
    model = BACKBONES[backbone]().eval()
    plan = resolve_plan(plan_of(case, model), describe(model))
    pv.add_adapter(model, 'a', plan)
    perturb(model, 1)
    x = example_inputs(backbone)
    with pv.tuner_context(**_context(plan)):
        if _types(plan) & NO_TASK_VECTOR:
            with pytest.raises(TypeError, match='defines no task vector'):
                combine_adapters(model, ['a'], [0.5], 'b', scale=2.0, heads='average')
            assert pv.list_adapters(model) == ['a']
            return
        combine_adapters(model, ['a'], [0.5], 'b', scale=2.0, heads='average')
        pv.set_adapter(model, 'a')
        y_a = model(x)
        pv.set_adapter(model, 'b')
        y_b = model(x)
    assert torch.allclose(y_a, y_b, atol=1e-5, rtol=1e-5), (y_a - y_b).abs().max()
    va, vb = adapter_vectors(model, 'a'), adapter_vectors(model, 'b')
    assert va.keys() == vb.keys()
    for key in va:
        for name, t in va[key].vector.items():
            assert torch.allclose(vb[key].vector[name], t, atol=1e-6), (key, name)


def test_lora_task_vector_is_the_dense_update_and_rebuilds_as_dense_delta():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', [{'type': 'LoRA', 'rank': 2, 'alpha': 4.0, 'parts': ['q', 'v']}])
    perturb(model, 1)
    op = tuned_ops(model)[0]
    lora = op.tuners['a']['lora']
    dw = lora.task_vector()['delta_weight']
    B = lora.lora_B  # (2 parts, 64, 2); scale alpha / rank = 2
    expected = torch.zeros(192, 64)
    expected[:64] = 2 * B[0] @ lora.lora_A[:2]
    expected[128:] = 2 * B[1] @ lora.lora_A[2:]
    assert torch.allclose(dw, expected, atol=1e-6)
    combine_adapters(model, ['a'], [0.5], 'b', scale=2.0, heads='average')
    rebuilt = op.tuners['b']['lora']
    assert type(rebuilt).__name__ == 'DenseDelta' and torch.equal(rebuilt.weight, dw)
    with pytest.raises(ValueError, match='DenseDelta'):
        lora.load_task_vector({'delta_weight': dw})


def test_ssf_task_vector_is_scale_minus_one_and_shift():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', [{'type': 'SSF', 'targets': 'blocks.0.mlp.fc1'}])
    ssf = tuned_ops(model)[0].tuners['a']['ssf']
    tv = ssf.task_vector()
    assert torch.equal(tv['scale'], ssf.scale.detach() - 1) and torch.equal(tv['shift'], ssf.shift.detach())
    ssf.load_task_vector({'scale': torch.zeros(256), 'shift': torch.zeros(256)})
    assert torch.equal(ssf.scale.detach(), torch.ones(256))  # the zero task vector is the identity transform


def test_reparameterised_prefix_rebuilds_as_a_direct_prefix_with_the_same_keys_and_values():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', [{'type': 'Prefix', 'targets': 'blocks.*.attn', 'num_tokens': 3, 'reparam_dim': 8}])
    perturb(model, 1)
    combine_adapters(model, ['a'], [0.5], 'b', scale=2.0, heads='average')
    op = tuned_ops(model)[0]
    rebuilt = op.tuners['b']['prefix']
    assert rebuilt.config.reparam_dim is None
    assert torch.allclose(rebuilt.kv, op.tuners['a']['prefix'].prefix_kv(), atol=1e-6)


def test_hyper_adapter_task_vector_is_the_generated_weights_per_task_and_rebuilds_as_task_adapter():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', [{'type': 'HyperAdapter', 'targets': 'blocks.*.mlp', 'tasks': ['x', 'y']}])
    perturb(model, 1)
    hyper = tuned_ops(model)[0].tuners['a']['hyperadapter']
    tv = hyper.task_vector()
    assert tv['down'].shape == (2, 16, 64) and tv['up_bias'].shape == (2, 64)
    for i, task in enumerate(['x', 'y']):
        assert torch.equal(tv['up'][i], hyper.weights(task)[2].detach())
    combine_adapters(model, ['a'], [0.5], 'b', scale=2.0, heads='average')
    assert {r['type'] for r in pv.describe_tuners(model) if r['adapter'] == 'b'} == {'TaskAdapter'}


def test_pre_classifier_alignment_task_vector_is_beta_minus_identity():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', [{'type': 'PreClassifierAlignment', 'targets': 'norm'}])
    beta = tuned_ops(model)[0].tuners['a']['preclassifieralignment']
    assert torch.equal(beta.task_vector()['weight'], torch.zeros(64, 64))  # identity-initialised


def test_low_rank_reports_the_eckart_young_error():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(12, 5, generator=g) @ torch.randn(5, 9, generator=g)  # rank 5
    s = torch.linalg.svdvals(delta.double())
    for k in (1, 3, 5):
        B, A, error, relative = low_rank(delta, k)
        actual = float((delta.double() - B.double() @ A.double()).norm())
        assert error == pytest.approx(float(s[k:].square().sum().sqrt()), abs=1e-9)
        assert actual == pytest.approx(error, abs=1e-4)
        assert relative == pytest.approx(error / float(s.square().sum().sqrt()))
    assert low_rank(delta, 5)[2] < 1e-5
    with pytest.raises(ValueError, match=r'rank must be in 1\.\.9'):
        low_rank(delta, 10)
