"""Sign-difference analysis (composition/signs.py) on constructed vectors and tiny models, and the
tools/analysis/sign_difference.py tool end to end on tuner files."""
import csv

import pytest
import torch

import petl_vision as pv
from petl_vision.composition import combine_adapters, sign_difference, sign_difference_of
from petl_vision.tuners import adapter_parameters
from tests.conftest import load_tool, tiny_vit

LORA = [{'type': 'LoRA', 'rank': 2}]


def read_csv(path) -> list[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_hand_computed_fractions_with_zeros():
    # a vs b: both non-zero at entries 0, 1, 3 (entry 2: b is 0, entry 4: a is 0); signs differ at 1 -> 1/3;
    # over all 5 entries: 1/5. a vs c: both non-zero at 0, 1, 2, 3; differ at 0, 2 -> 2/4, all: 2/5
    a = torch.tensor([1.0, -2.0, 3.0, 0.5, 0.0])
    b = torch.tensor([2.0, 1.0, 0.0, 0.1, -1.0])
    c = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0])
    r = sign_difference_of(['a', 'b', 'c'], {'l0': torch.stack([a, b, c])[:, :3], 'l1': torch.stack([a, b, c])[:, 3:]})
    assert r.pairwise[0, 1] == pytest.approx(1 / 3) and r.pairwise_all[0, 1] == pytest.approx(1 / 5)
    assert r.pairwise[0, 2] == pytest.approx(2 / 4) and r.pairwise_all[0, 2] == pytest.approx(2 / 5)
    assert torch.equal(r.pairwise, r.pairwise.t()) and r.pairwise.diagonal().tolist() == [0, 0, 0]
    # per layer: l0 = entries 0..2: a/b both non-zero at 0, 1, differ at 1 -> 1/2; l1: a/b both at 3, same -> 0
    assert r.per_layer['l0'][0, 1] == pytest.approx(1 / 2) and r.per_layer['l1'][0, 1] == 0
    # elected (total) signs: sums [2, -2, 2, 1.6, 0] -> [+, -, +, +, +]; a against: none of 4 non-zero;
    # b: entry 1 (+ vs -) and 4 (- vs +) of 4 -> 1/2; c: entries 0, 2 of 5 -> 2/5; k-way: 4 / 13
    assert r.elected.tolist() == pytest.approx([0.0, 0.5, 0.4])
    assert r.kway == pytest.approx(4 / 13)
    assert r.counts['both'][0, 1] == 3 and r.counts['differ'][0, 2] == 2 and int(r.counts['total']) == 5


def test_an_adapter_against_itself_is_zero_and_against_its_negation_is_one():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', LORA)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in adapter_parameters(model, 'a'):
            p.copy_(torch.randn(p.shape, generator=g))
    combine_adapters(model, ['a'], [-1], 'neg', method='task_arithmetic')
    combine_adapters(model, ['a'], [1], 'same')
    r = sign_difference(model, ['a', 'same', 'neg'])
    assert r.pairwise[0, 1] == 0 and r.pairwise[0, 2] == 1 and r.pairwise[1, 2] == 1
    assert set(r.per_layer) == {'blocks.0.attn.qkv', 'blocks.1.attn.qkv'}


def test_pruning_lowers_the_fraction_over_all_entries_not_over_shared_ones_for_unrelated_adapters():
    model = tiny_vit().eval()
    for i, name in enumerate(['a', 'b']):
        pv.add_adapter(model, name, LORA)
        g = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for p in adapter_parameters(model, name):
                p.copy_(torch.randn(p.shape, generator=g))
    dense = sign_difference(model, ['a', 'b'])
    pruned = sign_difference(model, ['a', 'b'], density=0.1)
    assert dense.pairwise[0, 1] == pytest.approx(0.5, abs=0.02)  # independent random updates: half the signs
    assert dense.pairwise_all[0, 1] == dense.pairwise[0, 1]  # dense updates: no zero entries
    assert pruned.counts['nonzero'].tolist() == [int(0.1 * 192 * 64) * 2] * 2  # per tensor, both ops
    assert pruned.pairwise_all[0, 1] < 0.05  # few entries survive in both
    both = pruned.counts['both'][0, 1]
    assert both < 0.1 * 2 * 192 * 64
    assert float(pruned.pairwise[0, 1]) == pytest.approx(int(pruned.counts['differ'][0, 1]) / int(both))
    assert pruned.pairwise[0, 1] == pytest.approx(0.5, abs=0.1)  # where both survive, signs still independent


def test_tool_writes_heat_map_tables_and_pruning_curve(tmp_path):
    model = tiny_vit().eval()
    files = []
    for i, name in enumerate(['cars', 'birds', 'flowers']):
        pv.add_adapter(model, name, LORA)
        g = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for p in adapter_parameters(model, name):
                p.copy_(torch.randn(p.shape, generator=g))
        files.append(pv.save_tuners(model, tmp_path / f'{name}.safetensors', adapter=name))
    expected = sign_difference(model, ['cars', 'birds', 'flowers'])
    tool = load_tool('analysis/sign_difference.py')
    out = tmp_path / 'out'
    kwargs = '{"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "num_classes": 5}'
    tool.main([*map(str, files), '--model', 'vit_tiny_patch16_224', '--model-kwargs', kwargs, '--out', str(out),
               '--densities', '0.5', '0.1'])
    assert (out / 'sign_difference.png').stat().st_size > 1000
    rows = read_csv(out / 'sign_difference.csv')
    assert [r['adapter'] for r in rows] == ['cars', 'birds', 'flowers']
    assert float(rows[0]['nonzero:birds']) == pytest.approx(float(expected.pairwise[0, 1]), abs=1e-6)
    assert float(rows[2]['vs_elected']) == pytest.approx(float(expected.elected[2]), abs=1e-6)
    layers = read_csv(out / 'per_layer.csv')
    assert [r['layer'] for r in layers] == ['blocks.0.attn.qkv', 'blocks.1.attn.qkv']
    curve = read_csv(out / 'pruning.csv')
    assert [float(r['density']) for r in curve] == [1.0, 0.5, 0.1]
    assert float(curve[0]['mean_pairwise']) == pytest.approx(tool.mean_offdiagonal(expected.pairwise), abs=1e-6)
    assert float(curve[2]['mean_pairwise_all']) < float(curve[0]['mean_pairwise_all'])
    assert 'k-way fraction' in (out / 'sign_difference.md').read_text()
