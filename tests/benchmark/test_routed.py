"""The L2R composition benchmark (--routed): structure, one backbone pass, real routing; not timings."""
import pytest
import torch

from petl_vision.benchmark.merged import Active
from petl_vision.benchmark.routed import (PHASES, Composed, GivenWeights, LiveCall, RoutedConfig, build_l2r,
                                          build_live, routed_table, run_routed)
from petl_vision.benchmark.timing import TrainStep, count_calls

TINY = dict(model='vit_tiny_patch16_224', img_size=32, batch_size=4, rounds=1, warmup=0)


def router_params(c: int, hidden: int, n: int) -> int:
    return 2 * c + (c * hidden + hidden) + (hidden * n + n)  # LayerNorm, Linear(C -> h), Linear(h -> N)


def test_rows_ratios_router_size_and_backbone_passes():
    report = run_routed(RoutedConfig(adapters=(1, 3), **TINY), log=lambda m: None)
    assert [r['adapters'] for r in report['rows']] == [1, 3]
    for r in report['rows']:
        assert r['router_params'] == router_params(192, 64, r['adapters'])
        assert r['train_l2r_ratio'] == pytest.approx(r['train_l2r_cpu_s'] / r['train_single_cpu_s'])
        assert r['infer_routed_ratio'] == pytest.approx(r['infer_routed_cpu_s'] / r['infer_single_cpu_s'])
        # the routed pass is one backbone pass for any N; L2R adds the router's frozen feature pass
        assert r['block_calls'] == {'train_l2r': 2, 'train_live': 1, 'train_single': 1, 'infer_l2r': 2, 'infer_live': 1,
                                    'infer_routed': 1, 'infer_single': 1}  # per-layer live routers: one pass
        assert r['live_router_params'] == 12 * router_params(192, 64, r['adapters'])  # one per block's qkv
        assert all(r[f'{p}_cpu_s'] > 0 for p in PHASES)
    table = routed_table(report)
    assert table.count('\n') == 3 and '| 3 | 12,931 / 155,172 |' in table and '| 2 / 1 / 1 |' in table


def test_twenty_adapters_route_in_one_pass_of_every_block_and_one_hot_weights_pick_one_adapter():
    l2r = build_l2r(RoutedConfig(adapters=(20,), **TINY), 20)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    one_hot = torch.zeros(4, 20)
    one_hot[:, 7] = 1
    routed = GivenWeights(l2r.model, one_hot, list(l2r.adapters)).eval()
    with torch.no_grad():
        assert all(count_calls(b, lambda: routed(x)) == 1 for b in l2r.model.blocks)
        torch.testing.assert_close(routed(x), Active(l2r.model, 't7')(x), rtol=1e-5, atol=1e-5)
        uniform = GivenWeights(l2r.model, torch.full((4, 20), 0.05), list(l2r.adapters))(x)
        assert not torch.allclose(uniform, routed(x), atol=1e-4)


def test_l2r_step_trains_the_router_only():
    l2r = build_l2r(RoutedConfig(adapters=(3,), **TINY), 3)
    frozen = {n: p.clone() for n, p in l2r.model.named_parameters()}
    router = [p.clone() for p in l2r.router.parameters()]
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    step = TrainStep(Composed(l2r), x, y, torch.float32, lr=1e-2)
    assert {id(p) for p in step.params} == {id(p) for p in l2r.router.parameters()}
    step()
    assert all(torch.equal(p, frozen[n]) for n, p in l2r.model.named_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(router, l2r.router.parameters()))


def test_one_pass_step_trains_every_per_layer_router_only():
    live = build_live(RoutedConfig(adapters=(3,), **TINY), 3)
    frozen = {n: p.clone() for n, p in live.model.named_parameters()}
    before = [p.clone() for r in live.routers.values() for p in r.parameters()]
    step = TrainStep(LiveCall(live), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.float32, lr=1e-2)
    assert {id(p) for p in step.params} == {id(p) for r in live.routers.values() for p in r.parameters()}
    step()
    assert all(torch.equal(p, frozen[n]) for n, p in live.model.named_parameters())
    after = [p for r in live.routers.values() for p in r.parameters()]
    first, last = after[0], after[-1]  # the first block's router and the last one both learn
    assert not torch.equal(first, before[0]) and not torch.equal(last, before[-1])
