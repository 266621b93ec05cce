"""The mixed-task benchmark: a batch over N adapters against one adapter, and PEFT's adapter_names inference."""
import pytest
import torch

import petl_vision as pv
from petl_vision.benchmark.mixed import MixedConfig, PeftMixed, Routed, build_adapters, build_peft, mixed_table, \
    run_mixed

TINY = dict(model='vit_tiny_patch16_224', img_size=32, batch_size=4, rounds=1, warmup=0)


def test_rows_have_both_phases_ratios_and_peft_for_lora():
    report = run_mixed(MixedConfig(methods=('lora', 'vpt_deep'), adapters=(1, 2), **TINY), log=lambda m: None)
    rows = {(r['method'], r['adapters']): r for r in report['rows']}
    assert set(rows) == {('lora', 1), ('lora', 2), ('vpt_deep', 1), ('vpt_deep', 2)}
    for r in rows.values():
        assert r['train_ratio'] > 0 and r['infer_ratio'] > 0
        assert r['train_ratio'] == pytest.approx(r['train_mixed_cpu_s'] / r['train_single_cpu_s'])
    assert 'peft_over_ours' in rows[('lora', 2)] and 'peft_over_ours' not in rows[('vpt_deep', 2)]
    table = mixed_table(report)
    assert table.count('\n') == 1 + len(rows) and '| lora | 2 |' in table


def test_both_timed_mixed_batches_equal_their_per_sample_runs():
    """What is timed is real routing: ours and PEFT's mixed batches each equal running every sample alone."""
    cfg = MixedConfig(methods=('lora',), adapters=(2,), **TINY)
    ours, theirs = build_adapters(cfg, 'lora', 2).eval(), build_peft(cfg, 2).eval()
    with torch.no_grad():  # PEFT's B starts at zero: give its adapters different, non-zero weights
        for p in theirs.parameters():
            p.normal_(0, 0.02, generator=torch.Generator().manual_seed(p.numel()))
    names = ['t0', 't1', 't1', 't0']
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        peft_out = PeftMixed(theirs, names)(x)
        per_sample = torch.cat([theirs(x[i:i + 1], adapter_names=[n]) for i, n in enumerate(names)])
    torch.testing.assert_close(peft_out, per_sample, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        mixed = Routed(ours, names)(x)
        alone = []
        for i, n in enumerate(names):
            pv.set_adapter(ours, n)
            alone.append(ours(x[i:i + 1]))
    torch.testing.assert_close(mixed, torch.cat(alone), rtol=1e-5, atol=1e-5)
