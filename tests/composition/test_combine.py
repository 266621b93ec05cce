"""combine_adapters / prune_adapter / adapter_soup on tiny models: linear on LoRA is the exact weighted sum of the
dW (different ranks and parts), w = [1] is the adapter itself, TIES/DARE follow merging.py on the dW, SVD reports
the Eckart-Young error, combined adapters merge, save and load like any other, bad input changes nothing."""
import pytest
import torch

import petl_vision as pv
from petl_vision.composition import (adapter_soup, adapter_vectors, combine_adapters, merge_stack, prune_adapter,
                                     select_by_similarity, task_vector_similarity)
from petl_vision.tuners import adapter_parameters, adapter_state, tuned_ops
from petl_vision.tuners.attach import adapter_plans
from tests.conftest import tiny_swin, tiny_vit

X = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
LORA_A = [{'type': 'LoRA', 'rank': 2, 'parts': ['q', 'v']}]
LORA_B = [{'type': 'LoRA', 'rank': 4, 'alpha': 8.0}]
ADAPTFORMER = [{'type': 'AdaptFormer', 'targets': 'blocks.*.mlp', 'dim': 4}]


def randomise(model, adapter: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter_parameters(model, adapter):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


def lora_model(build=tiny_vit):
    model = build().eval()
    pv.add_adapter(model, 'a', LORA_A)
    pv.add_adapter(model, 'b', LORA_B)
    randomise(model, 'a', 1)
    randomise(model, 'b', 2)
    return model


def output(model, adapter: str) -> torch.Tensor:
    pv.set_adapter(model, adapter)
    return model(X)


def dw(model, adapter: str) -> dict[str, torch.Tensor]:
    return {op.op.name: op.tuners[adapter]['lora'].task_vector()['delta_weight'] for op in tuned_ops(model)
            if adapter in op.tuners}


@pytest.mark.parametrize('build', [tiny_vit, tiny_swin])
def test_linear_on_lora_of_different_ranks_is_the_exact_weighted_sum_of_dw(build):
    model = lora_model(build)
    combine_adapters(model, ['a', 'b'], [0.7, -0.4], 'c')
    da, db, dc = dw(model, 'a'), dw(model, 'b'), dw(model, 'c')
    for op in da:
        assert (dc[op] - (0.7 * da[op] - 0.4 * db[op])).abs().max() < 1e-6
    # LoRA is parallel and linear in dW: the weight-space sum acts as the output-space sum
    pv.set_adapter(model, ['a', 'b'], weights=[0.7, -0.4])
    mixed = model(X)
    assert torch.allclose(output(model, 'c'), mixed, atol=1e-5)


def test_one_adapter_with_weight_one_is_the_adapter_itself():
    model = lora_model()
    report = combine_adapters(model, ['a'], [1], 'c')
    assert adapter_plans(model)['c'] == adapter_plans(model)['a']
    sa, sc = adapter_state(model, 'a'), adapter_state(model, 'c')
    assert sa.keys() == sc.keys() and all(torch.equal(sa[k], sc[k]) for k in sa)
    assert torch.equal(output(model, 'a'), output(model, 'c'))
    assert report.weights == [1.0] and report.density == pytest.approx(2 / 3)  # parts q, v: k's rows are zero


def test_task_arithmetic_negation_and_scale():
    model = lora_model()
    combine_adapters(model, ['a'], [-1], 'neg', method='task_arithmetic')
    combine_adapters(model, ['a', 'b'], [1, 1], 'sum', method='task_arithmetic', scale=0.25)
    da, db = dw(model, 'a'), dw(model, 'b')
    for op, d in dw(model, 'neg').items():
        assert torch.equal(d, -da[op])
        assert (dw(model, 'sum')[op] - 0.25 * (da[op] + db[op])).abs().max() < 1e-6


@pytest.mark.parametrize('method,density', [('ties', 0.3), ('dare_linear', 0.5), ('dare_ties', 0.5),
                                            ('magnitude_prune', 0.2)])
def test_pruning_methods_act_on_dw_as_merging_rules(method, density):
    model = lora_model()
    report = combine_adapters(model, ['a', 'b'], [1.0, 0.5], 'c', method=method, density=density, seed=3)
    da, db, dc = dw(model, 'a'), dw(model, 'b'), dw(model, 'c')
    g = torch.Generator().manual_seed(3)
    for op in da:  # ops in the model's order, as combine draws them
        expected = merge_stack(torch.stack([da[op], db[op]]), torch.tensor([1.0, 0.5]), method, density,
                               generator=g)
        assert torch.allclose(dc[op], expected, atol=1e-6)
    if method.startswith('dare'):
        combine_adapters(model, ['a', 'b'], [1.0, 0.5], 'same', method=method, density=density, seed=3)
        combine_adapters(model, ['a', 'b'], [1.0, 0.5], 'other', method=method, density=density, seed=4)
        assert all(torch.equal(dc[op], dw(model, 'same')[op]) for op in dc)
        assert not all(torch.equal(dc[op], dw(model, 'other')[op]) for op in dc)
    assert 0 < report.density < 1


def test_svd_rank_k_reports_the_eckart_young_error_and_full_rank_is_exact():
    model = lora_model()
    report = combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'low', method='svd', rank=2)
    exact = combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'exact', method='linear')
    full = combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'full', method='svd', rank=8)  # rank(dW) <= 2*2 + 4
    low, ref = dw(model, 'low'), {op.op.name: op.tuners['exact']['lora'].weight for op in tuned_ops(model)}
    for op, d in ref.items():
        s = torch.linalg.svdvals(d.double())
        error, relative = report.svd_error[f'{op}:lora']
        assert error == pytest.approx(float(s[2:].square().sum().sqrt()), rel=1e-6)
        assert float((d - low[op]).norm()) == pytest.approx(error, rel=1e-4)
        assert relative == pytest.approx(error / float(d.norm()), rel=1e-5)
        assert full.svd_error[f'{op}:lora'][1] < 1e-6
    assert exact.svd_error == {}
    assert torch.allclose(output(model, 'full'), output(model, 'exact'), atol=1e-5)
    assert {r['type'] for r in pv.describe_tuners(model) if r['adapter'] == 'low'} == {'LoRA'}


def test_combined_adapter_merges_saves_and_loads_like_any_other(tmp_path):
    model = lora_model()
    combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'c', method='ties', density=0.5)
    y = output(model, 'c')
    pv.merge_tuners(model)
    assert torch.allclose(model(X), y, atol=1e-5)
    pv.unmerge_tuners(model)
    path = pv.save_tuners(model, tmp_path / 'c.safetensors', adapter='c')
    fresh = tiny_vit().eval()
    pv.load_tuners(fresh, path, adapter='c')
    assert torch.equal(fresh(X), y)


def test_adapters_with_parameters_mix_entrywise():
    model = tiny_vit().eval()
    for i, name in enumerate(['p', 'q']):
        pv.add_adapter(model, name, ADAPTFORMER, trainable=('head',))
        randomise(model, name, i)
    combine_adapters(model, ['p', 'q'], [0.25, 0.75], 'r', heads='average')
    vp, vq, vr = (adapter_vectors(model, n) for n in 'pqr')
    for key in vp:
        for t in vp[key].vector:
            assert torch.allclose(vr[key].vector[t], 0.25 * vp[key].vector[t] + 0.75 * vq[key].vector[t], atol=1e-7)
    assert ('head', 'trained') in vr  # heads='average': the heads' LinearDeltas mixed like every other tuner


def test_different_plans_and_bad_arguments_are_refused_and_change_nothing():
    model = lora_model()
    pv.add_adapter(model, 'ad', ADAPTFORMER)
    before = pv.list_adapters(model)
    with pytest.raises(ValueError, match='different plans'):
        combine_adapters(model, ['a', 'ad'], [0.5, 0.5], 'c')
    with pytest.raises(ValueError, match='density=0.5 has no effect'):
        combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'c', density=0.5)
    with pytest.raises(ValueError, match='needs density'):
        combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'c', method='ties')
    with pytest.raises(ValueError, match='unknown method'):
        combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'c', method='slerp')
    with pytest.raises(ValueError, match='2 weights for 1 adapters'):
        combine_adapters(model, ['a'], [0.5, 0.5], 'c')
    with pytest.raises(ValueError, match='give rank=k'):
        combine_adapters(model, ['a', 'b'], None, 'c', method='svd')
    with pytest.raises(ValueError, match='rank must be in 1..64'):
        combine_adapters(model, ['a', 'b'], None, 'c', rank=65)  # fails after the adapter was added: taken off
    with pytest.raises(KeyError, match='no adapter named'):
        combine_adapters(model, ['a', 'zz'], None, 'c')
    with pytest.raises(ValueError, match='already has an adapter named'):
        combine_adapters(model, ['a', 'b'], None, 'b')
    assert pv.list_adapters(model) == before


def test_default_adapter_training_backbone_tensors_is_refused():
    model = tiny_vit().eval()
    pv.apply_tuners(model, 'lora', trainable=('head',))
    with pytest.raises(ValueError, match='trains backbone tensors directly'):
        combine_adapters(model, ['default'], [0.5], 'c')
    with pytest.raises(ValueError, match='trains backbone tensors directly'):
        combine_adapters(model, ['default'], [1], 'c')


@pytest.mark.parametrize('scope', ['tensor', 'global'])
def test_prune_adapter_keeps_the_largest_entries(scope):
    model = lora_model()
    report = prune_adapter(model, 'b', 0.1, scope=scope)
    db, dp = dw(model, 'b'), {op.op.name: op.tuners['b_pruned']['lora'].weight for op in tuned_ops(model)}
    counts = {op: int(d.count_nonzero()) for op, d in dp.items()}
    if scope == 'tensor':
        assert all(c == int(0.1 * db[op].numel()) for op, c in counts.items())
    else:
        everything = torch.cat([d.abs().reshape(-1) for d in db.values()])
        threshold = everything.topk(int(0.1 * everything.numel())).values[-1]
        assert sum(counts.values()) == int(0.1 * everything.numel())
        for op, d in dp.items():
            assert torch.equal(d != 0, db[op].abs() >= threshold)
    for op, d in dp.items():
        kept = d != 0
        assert torch.equal(d[kept], db[op][kept])
    assert report.density == pytest.approx(0.1, abs=1e-3)


def test_adapter_soup_averages_the_most_similar_adapters():
    model = tiny_vit().eval()
    for i, name in enumerate(['x', 'y', 'z']):
        pv.add_adapter(model, name, LORA_B)
        randomise(model, name, i)
    combine_adapters(model, ['x', 'y'], [0.9, 0.1], 'ref')  # close to x, a little of y, nothing of z
    sims = task_vector_similarity(model, ['ref', 'x', 'y', 'z'])
    assert torch.allclose(sims.diagonal(), torch.ones(4, dtype=torch.float64))
    chosen = select_by_similarity(model, 'ref', ['x', 'y', 'z'], k=2)
    assert [n for n, _ in chosen] == ['x', 'y'] and chosen[0][1] == pytest.approx(float(sims[0, 1]))
    report = adapter_soup(model, ['x', 'y', 'z'], 'soup', k=2, reference='ref')
    assert report.adapters == ['x', 'y'] and report.weights == [0.5, 0.5]
    dsoup, dx, dy = dw(model, 'soup'), dw(model, 'x'), dw(model, 'y')
    assert all((dsoup[op] - (dx[op] + dy[op]) / 2).abs().max() < 1e-6 for op in dx)
