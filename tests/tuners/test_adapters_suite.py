"""The named-adapters suite, over every registered tuner type and preset x every tiny backbone (as the generic
suite): two adapters on one backbone, each activated alone equals a model with that adapter only; a mixed batch
(with frozen-model samples) equals each sample run alone with its adapter; soft routing mixes updates; save/load
one adapter beside another; deleting one leaves the other's outputs exactly."""
import pytest
import torch

import petl_vision as pv
from petl_vision.tuners import BASE, Placement, ParameterSelection, get_tuner_cls
from tests.conftest import perturb
from tests.tuners.test_generic_suite import BACKBONES, CASES, example_context, example_inputs, plan_of  # noqa: F401


def _named_ok(case: str, backbone: str) -> bool:
    """Cases a named adapter can hold: full fine-tuning trains the backbone itself (one adapter only)."""
    return case not in ('full', 'type:Full', 'linear')


ADAPTER_CASES = [(c, b) for c, b in CASES if _named_ok(c, b)]


def two_adapters(case: str, backbone: str):
    """A backbone with adapters 'a' and 'b' (same plan, different weights), and the fresh backbones to compare."""
    model = BACKBONES[backbone]().eval()
    plan = plan_of(case, model)
    pv.add_adapter(model, 'a', plan)
    perturb(model, seed=1)
    pv.add_adapter(model, 'b', plan)
    with torch.no_grad():  # move only b's tensors
        g = torch.Generator().manual_seed(2)
        for p in pv.tuners.adapter_parameters(model, 'b'):
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model, plan


def single(model, adapter: str, x: torch.Tensor) -> torch.Tensor:
    pv.set_adapter(model, adapter)
    return model(x)


def _has_placement(model, *placements) -> bool:
    return any(t.placement in placements for op in pv.tuners.tuned_ops(model) for _, _, t in op.all_tuners())


@pytest.mark.parametrize('case,backbone', ADAPTER_CASES)
def test_each_adapter_alone_equals_a_model_holding_only_it(case, backbone, tmp_path):
    x = example_inputs(backbone)
    model, plan = two_adapters(case, backbone)
    assert pv.list_adapters(model) == ['a', 'b']
    out_a, out_b = single(model, 'a', x), single(model, 'b', x)
    path = pv.save_tuners(model, tmp_path / 'b.safetensors', adapter='b')
    alone = pv.load_tuners(BACKBONES[backbone]().eval(), path)  # b's file as the only adapter of a fresh backbone
    torch.testing.assert_close(alone(x), out_b, rtol=0, atol=1e-6)
    assert pv.count_parameters(model, adapter='a')['trainable'] == pv.count_parameters(alone)['trainable']
    assert not torch.allclose(out_a, out_b)


def _tuner_classes(model) -> list[type]:
    return [type(t) for op in pv.tuners.tuned_ops(model) for _, _, t in op.all_tuners()]


@pytest.mark.parametrize('case,backbone', ADAPTER_CASES)
def test_a_mixed_batch_equals_each_sample_alone(case, backbone):
    """Each sample as if run alone with its adapter; for tuners with batch statistics (TAN), each adapter's group
    of samples as if run alone. Tuners that insert tokens cannot share a batch with the frozen model: a clear
    error, and samples of adapters that all insert them mix."""
    x = example_inputs(backbone)
    x = torch.cat([x, x.flip(0)])  # 4 samples
    model, _ = two_adapters(case, backbone)
    names = ['a', 'b', BASE, 'b']
    if not all(c.keeps_shape for c in _tuner_classes(model)):
        with pytest.raises(ValueError, match='give outputs of different shapes'), pv.tuner_context(adapter=names):
            model(x)
        names = ['a', 'b', 'a', 'b']
    per_sample = all(c.per_sample for c in _tuner_classes(model))
    if not per_sample:
        names = ['a', 'b', 'a', 'b']  # batch statistics need two samples per group
    groups = [[i] for i in range(4)] if per_sample else [[i for i, n in enumerate(names) if n == m]
                                                          for m in dict.fromkeys(names)]
    with pv.tuner_context(adapter=names):
        mixed = model(x)
    for group in groups:
        with pv.tuner_context(adapter=names[group[0]]):
            alone = model(x[group])
        torch.testing.assert_close(mixed[group], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('case,backbone', ADAPTER_CASES)
def test_a_mixed_batch_trains_each_adapter_on_its_own_samples(case, backbone):
    x = example_inputs(backbone)
    model, _ = two_adapters(case, backbone)  # eval mode: a BatchNorm head in training mode couples the samples
    other = BASE if all(c.keeps_shape for c in _tuner_classes(model)) else 'b'
    x = torch.cat([x, x.flip(0)])
    with pv.tuner_context(adapter=['a', 'a', other, other]):
        model(x)[:2].sum().backward()  # only samples 0 and 1 (adapter a) are in the loss
    a = pv.tuners.adapter_parameters(model, 'a')
    b = pv.tuners.adapter_parameters(model, 'b')
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in a)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in b)


@pytest.mark.parametrize('case,backbone', ADAPTER_CASES)
def test_soft_routing_mixes_the_adapters_updates(case, backbone):
    x = example_inputs(backbone)
    model, _ = two_adapters(case, backbone)
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    classes = _tuner_classes(model)
    if _has_placement(model, Placement.PROMPT, Placement.SIDE) or not all(c.keeps_shape for c in classes):
        with pytest.raises(ValueError, match='route those per sample'), \
                pv.tuner_context(adapter_weights=one_hot, adapters=['a', 'b']):
            model(x)
        return
    with pv.tuner_context(adapter_weights=one_hot, adapters=['a', 'b']):
        soft = model(x)
    if all(c.per_sample for c in classes):  # (batch statistics are the whole batch's under soft routing)
        with pv.tuner_context(adapter=['a', 'b']):
            hard = model(x)
        torch.testing.assert_close(soft, hard, rtol=1e-5, atol=1e-5)  # one-hot weights are hard routing
    zero = torch.zeros(2, 2)
    with pv.tuner_context(adapter_weights=zero, adapters=['a', 'b']):
        torch.testing.assert_close(model(x), BACKBONES[backbone]().eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('case,backbone', ADAPTER_CASES)
def test_load_one_adapter_beside_another_and_delete_restores_the_other(case, backbone, tmp_path):
    x = example_inputs(backbone)
    model, plan = two_adapters(case, backbone)
    out_a, out_b = single(model, 'a', x), single(model, 'b', x)
    path = pv.save_tuners(model, tmp_path / 'a.safetensors', adapter='a')
    host = BACKBONES[backbone]().eval()
    pv.add_adapter(host, 'b', plan)
    host.load_state_dict(model.state_dict(), strict=False)  # b's weights (a's keys are absent from host)
    pv.load_tuners(host, path, adapter='a2')
    assert pv.list_adapters(host) == ['b', 'a2']
    torch.testing.assert_close(single(host, 'a2', x), out_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(single(host, 'b', x), out_b, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="already has an adapter named 'b'"):
        pv.load_tuners(host, path, adapter='b')
    pv.delete_adapter(model, 'a')
    assert pv.list_adapters(model) == ['b']
    torch.testing.assert_close(single(model, 'b', x), out_b, rtol=0, atol=0)
    pv.delete_adapter(model, 'b')
    torch.testing.assert_close(model(x), BACKBONES[backbone]().eval()(x), rtol=0, atol=0)
    assert not pv.tuners.tuned_ops(model)
    with pytest.raises(KeyError, match=r"no adapter named \['b'\]"):
        pv.set_adapter(model, 'b')


def test_parameter_selections_become_deltas_in_named_adapters(images):
    model = tiny_vit_fresh()
    pv.add_adapter(model, 'a', 'bitfit', trainable=('head',))
    n_biases = sum(p.numel() for n, p in tiny_vit_fresh().named_parameters() if n.endswith('.bias'))
    head = 5 * 64 + 5
    assert pv.count_parameters(model, 'a')['trainable'] == n_biases + head
    assert all(not p.requires_grad for n, p in model.named_parameters() if '.tuners.' not in n)
    with pytest.raises(ValueError, match="full fine-tuning .* can only be the 'default' adapter"):
        pv.add_adapter(model, 'b', 'full')
    assert issubclass(get_tuner_cls('BitFit'), ParameterSelection)


def tiny_vit_fresh():
    from tests.conftest import tiny_vit
    return tiny_vit().eval()
