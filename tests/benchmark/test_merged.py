"""The merged-combination benchmark (--merged): structure and what the timed models compute, not timings."""
import copy

import pytest
import torch

from petl_vision.benchmark.merged import COMBINED, PHASES, MergedConfig, build_models, merged_table, phase_models, \
    run_merged, time_combine
from petl_vision.composition.merging import merge_stack
from petl_vision.composition.vectors import adapter_vectors

TINY = dict(model='vit_tiny_patch16_224', img_size=32, batch_size=2, adapters=3, rounds=1, warmup=0)


def test_record_has_every_phase_the_combine_time_and_an_exact_merge():
    report = run_merged(MergedConfig(**TINY), log=lambda m: None)
    row = report['row']
    assert row['combine_s'] > 0 and row['combine_cpu_s'] > 0
    # TIES keeps the union of each adapter's top 20%: 1 - 0.8^3 of the entries for independent random adapters
    assert row['density'] == pytest.approx(1 - 0.8 ** 3, abs=0.02)
    assert row['merged_max_abs_diff'] < 1e-5  # the merged copy computes the unmerged combination
    for p in PHASES:
        assert row[f'{p}_vs_frozen'] == pytest.approx(row[f'{p}_cpu_s'] / row['frozen_cpu_s'])
    assert row['frozen_vs_frozen'] == 1.0 and len(row['samples_cpu_s']['merged']) == 1
    assert {'cpu', 'torch_threads', 'load_average_before'} <= report['machine'].keys()
    table = merged_table(report)
    assert "3 LoRA r8, method='ties', density=0.2" in table and all(f'| {p} |' in table for p in PHASES)


def test_merged_model_is_the_frozen_model_plus_the_ties_merge_of_the_lora_updates():
    cfg = MergedConfig(**TINY)
    frozen, model, names = build_models(cfg)
    time_combine(model, names, cfg)
    phases = phase_models(frozen, model)
    expected = copy.deepcopy(frozen)
    vectors = [adapter_vectors(model, n) for n in names]
    weights = dict(expected.named_parameters())
    with torch.no_grad():
        for key in vectors[0]:  # (op name, tuner name): one LoRA per block's qkv
            stack = torch.stack([v[key].vector['delta_weight'] for v in vectors])  # (N, 3C, C)
            weights[f'{key[0]}.weight'] += merge_stack(stack, torch.ones(len(names)), 'ties', cfg.density)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = {p: m.eval()(x) for p, m in phases.items()}
        torch.testing.assert_close(out['merged'], expected.eval()(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out['combined'], out['merged'], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out['single'], out['frozen'], atol=1e-4)  # the timed adapter does act
    assert len(vectors[0]) == 12 and COMBINED in model.petl_adapters
    with pytest.raises(ValueError, match='merged-adapters'):
        MergedConfig(adapters=0)
    with pytest.raises(ValueError, match="--merged-method 'svd'"):
        MergedConfig(method='svd')


def test_paired_ratio_divides_out_a_slow_round():
    from petl_vision.benchmark.timing import paired_ratio

    # a busy spell slows the values in rounds 2 and 3 and the reference in round 2 only: the ratio of medians is 2.0,
    # the per-round ratios 1.01, 1.02 and 2.0
    assert paired_ratio([1.01, 2.04, 2.0], [1.0, 2.0, 1.0]) == pytest.approx(1.02)
    with pytest.raises(ValueError, match='pair samples'):
        paired_ratio([1.0], [1.0, 2.0])
