"""L2R's per-block / per-layer routers and its merge mode: merge equals output for LoRA (and a trained head) to
1e-5, per-site routers pick the right adapter, train on the memory only, and one-hot site weights give the adapter
alone."""
import pytest
import torch

import petl_vision as pv
from petl_vision.continual import L2R
from petl_vision.continual.sites import block_of, routing_sites
from tests.conftest import tiny_vit
from tests.continual.test_l2r import PLAN, TASKS, task_data, train_sequence


def trained(routers: str, mode: str = 'output', inputs: str = 'frozen'):
    return train_sequence(routers=routers, mode=mode, inputs=inputs)[:4]


@pytest.fixture(scope='module')
def layer_l2r():
    return trained('layer')


def test_sites_are_the_adapted_ops_or_their_blocks(layer_l2r):
    l2r, *_ = layer_l2r
    assert routing_sites(l2r.model, l2r.adapters, 'layer') == ['blocks.0.attn.qkv', 'blocks.1.attn.qkv', 'head']
    assert routing_sites(l2r.model, l2r.adapters, 'block') == ['blocks.0', 'blocks.1', 'head']
    assert block_of('blocks.11.mlp.fc1') == 'blocks.11' and block_of('head') == 'head'
    assert sorted(l2r.routers) == ['blocks.0.attn.qkv', 'blocks.1.attn.qkv', 'head']


@pytest.mark.parametrize('routers', ['layer', 'block'])
def test_per_site_routers_pick_the_right_adapter_and_read_the_memory_only(routers, layer_l2r):
    l2r, memory, train, reads = layer_l2r if routers == 'layer' else trained(routers)
    for t, data in enumerate(train):  # after training: only the kept samples were read
        assert data.read - reads[t] == set(memory.tasks[t])
    tests = [task_data(t, 40, seed=1) for t in range(TASKS)]
    x, y = torch.cat([a for a, _ in tests]), torch.cat([b for _, b in tests])
    tasks = torch.arange(TASKS).repeat_interleave(40)
    assert l2r.routing_accuracy(x, tasks) >= 0.95
    assert (l2r.top_adapter(x) == tasks).float().mean() >= 0.95
    with torch.no_grad():
        routed = (l2r(x).argmax(1) == y).float().mean().item()
    assert routed >= 0.9


def test_one_hot_site_weights_equal_the_adapter_alone(layer_l2r):
    l2r, *_ = layer_l2r
    x, _ = task_data(2, 6, seed=2)
    one_hot = torch.nn.functional.one_hot(torch.full((6,), 2), 3).float()
    with torch.no_grad():
        routed = l2r(x, weights={s: one_hot for s in l2r.routers})
        with pv.tuner_context(adapter='task2'):
            alone = l2r.model(x)
    assert torch.allclose(routed, alone, atol=1e-5)


@pytest.mark.parametrize('routers', ['model', 'layer'])
def test_merge_mode_equals_output_mode_for_lora(routers):
    model = tiny_vit(num_classes=2).eval()
    out, merged = L2R(model, routers=routers), L2R(model, routers=routers, mode='merge')
    for t in range(3):
        torch.manual_seed(t)
        out.add_task(f'task{t}', PLAN, trainable=('head',))
        for p in pv.tuners.adapter_parameters(model, f'task{t}'):  # B and the head delta start at zero
            p.data.normal_(0, 0.3)
    merged.adapters = list(out.adapters)
    x = torch.randn(5, 3, 32, 32)
    w = torch.softmax(torch.randn(5, 3) * 2, dim=1)
    weights = w if routers == 'model' else {s: torch.softmax(torch.randn(5, 3), 1)
                                            for s in routing_sites(model, out.adapters, 'layer')}
    with torch.no_grad():
        a, b = out(x, weights=weights), merged(x, weights=weights)
        frozen = pv.tuner_context(adapter=None)
        with frozen:
            base = model(x)
    assert (a - base).abs().max() > 0.1  # the adapters do change the output
    assert torch.allclose(a, b, atol=1e-5)


def test_merge_refuses_a_non_linear_adapter_and_bad_options():
    model = tiny_vit(num_classes=2).eval()
    l2r = L2R(model, mode='merge')
    l2r.add_task('a', [{'type': 'Adapter', 'targets': 'blocks.*.mlp', 'dim': 4}])
    with pytest.raises(ValueError, match="use mode='output'"):
        l2r(torch.randn(2, 3, 32, 32), weights=torch.ones(2, 1))
    assert not model.blocks[0].mlp._forward_hooks  # nothing left behind
    with pytest.raises(ValueError, match='routers must be one of'):
        L2R(model, routers='head')
    with pytest.raises(ValueError, match="mode must be 'output'"):
        L2R(model, mode='sum')


def test_live_routers_route_in_one_pass_and_read_the_memory_only():
    l2r, memory, train, reads = trained('layer', inputs='live')
    for t, data in enumerate(train):
        assert data.read - reads[t] == set(memory.tasks[t])
    tests = [task_data(t, 40, seed=1) for t in range(TASKS)]
    x, y = torch.cat([a for a, _ in tests]), torch.cat([b for _, b in tests])
    tasks = torch.arange(TASKS).repeat_interleave(40)
    assert l2r.routing_accuracy(x, tasks) >= 0.95
    calls = []
    handle = l2r.model.blocks[0].register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        routed = (l2r(x).argmax(1) == y).float().mean().item()
    handle.remove()
    assert calls == [1]  # one backbone pass: the routers read the routed pass's own site inputs
    assert routed >= 0.9
    w = l2r.weights(x[:4])
    assert sorted(w) == sorted(l2r.routers) and all(v.shape == (4, TASKS) for v in w.values())
    with torch.no_grad():  # the recorded weights, given back, reproduce the live pass
        torch.testing.assert_close(l2r(x[:4], weights=w), l2r(x[:4]), rtol=1e-5, atol=1e-5)


def test_live_inputs_need_per_site_routers_in_output_mode():
    model = tiny_vit(num_classes=2).eval()
    with pytest.raises(ValueError, match="routers='block' or 'layer'"):
        L2R(model, inputs='live')
    with pytest.raises(ValueError, match="mode='output'"):
        L2R(model, routers='layer', mode='merge', inputs='live')
    with pytest.raises(ValueError, match="inputs must be 'frozen' or 'live'"):
        L2R(model, routers='layer', inputs='routed')


def test_a_live_router_is_fitted_on_the_inputs_it_reads_at_inference():
    from petl_vision.continual.sites import LiveSiteRouting, live_site_input, pool_tokens

    l2r, *_ = trained('layer', inputs='live')
    x, _ = task_data(1, 8, seed=3)
    sites = list(l2r.routers)
    last = sites[-1]
    seen = []
    handle = l2r.model.get_submodule(last).register_forward_pre_hook(lambda m, a: seen.append(pool_tokens(a[0])))
    with torch.no_grad(), LiveSiteRouting(l2r.model, l2r.routers, l2r.adapters):
        l2r.model(x)
    handle.remove()
    before = {s: l2r.routers[s] for s in sites[:-1]}  # what was fitted when the last site's router was
    torch.testing.assert_close(live_site_input(l2r.model, last, before, l2r.adapters, x), seen[0])
