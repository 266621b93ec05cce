"""Soft routing over LoRA adapters is one fused update (``LoRA.mixed``: every A at once, each adapter's slice
weighted per row, every B at once), equal to adding the adapters' weighted updates one by one."""
import pytest
import torch

import petl_vision as pv
from petl_vision.tuners import tuned_op
from tests.conftest import perturb, tiny_vit

PLANS = {
    'whole': [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 2}],
    'parts': [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 3, 'parts': ['q', 'v'], 'alpha': 6}],
    'mlp': [{'type': 'LoRA', 'targets': 'blocks.*.mlp.fc1', 'rank': 2}],
}


def _three_adapters(plan):
    model = tiny_vit().eval()
    pv.apply_tuners(model, plan)
    for name in ('b', 'c'):
        pv.add_adapter(model, name, plan)
    perturb(model)
    return model


def _weights():
    return torch.tensor([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0], [-0.7, 1.2, 0.4]])


@pytest.mark.parametrize('plan', PLANS)
def test_fused_soft_routing_equals_the_weighted_sum_of_updates(plan, monkeypatch):
    model = _three_adapters(PLANS[plan])
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    names = ['default', 'b', 'c']

    def run():
        with pv.tuner_context(adapter_weights=_weights(), adapters=names):
            out = model(x)
        grads = torch.autograd.grad(out.square().sum(), [x, *pv.tuners.adapter_parameters(model, 'c')])
        return out, grads

    fused, fused_grads = run()
    calls = []
    original = tuned_op._mixed_update

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(tuned_op, '_mixed_update', spy)
    run()
    assert calls, 'the fused path was not taken'
    monkeypatch.setattr(tuned_op, '_mixed_update', lambda *args: None)  # one adapter after another
    loop, loop_grads = run()
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-5)
    for a, b in zip(fused_grads, loop_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fused_update_is_the_hand_computed_mix():
    model = _three_adapters(PLANS['parts'])
    op = model.blocks[0].attn.qkv
    tuners = [op.active(a)[0] for a in ('default', 'b', 'c')]
    x = torch.randn(3, 5, tuners[0].lora_A.shape[1])
    w = _weights()
    expected = sum(w[:, j, None, None] * (x @ t.delta_weight().t()) for j, t in enumerate(tuners))
    torch.testing.assert_close(type(tuners[0]).mixed(tuners, x, w), expected, rtol=1e-5, atol=1e-5)


def test_dropout_falls_back_to_one_adapter_after_another():
    plan = [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 2, 'dropout': 0.1}]
    model = _three_adapters(plan)
    tuners = [model.blocks[0].attn.qkv.active(a)[0] for a in ('default', 'b', 'c')]
    assert type(tuners[0]).mixed(tuners, torch.randn(3, 4, 32), _weights()) is None
