"""The benchmark's arithmetic and outputs on tiny models (not its timings)."""
import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from petl_vision.benchmark import (BenchConfig, add_ratios, count_flops, markdown_report, median, plot_ratios, ratio,
                                   round_robin, run_benchmark, write_json)
from petl_vision.benchmark import memory as memory_mod
from petl_vision.benchmark import runner as runner_mod
from petl_vision.benchmark import timing as timing_mod
from petl_vision.benchmark.methods import check_methods, create_backbone, peft_available
from tests.conftest import tiny_vit

TINY = dict(model='vit_tiny_patch16_224', img_size=32, batch_size=2, num_classes=5)


def test_ratio_and_missing_values():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(1.0, None) is None and ratio(1.0, 0) is None


def test_ratios_to_full_and_peft():
    def row(step, merged):
        return {'step_time_s': step, 'peak_memory_mb': 2 * step, 'infer_unmerged_s': step / 10,
                'infer_merged_s': merged, 'trainable_params': 100 * step, 'gflops': 1.0}
    methods = {'full': row(4.0, None), 'lora': row(2.0, 0.404), 'peft_lora': row(1.0, 0.2)}
    add_ratios(methods, 'full', 'peft_lora')
    full, peft = methods['lora']['ratios']['vs_full'], methods['lora']['ratios']['vs_peft']
    assert full['step_time_s'] == 0.5 and full['peak_memory_mb'] == 0.5 and full['trainable_params'] == 0.5
    assert full['infer_merged_s'] == pytest.approx(1.01)  # merged latency vs the frozen backbone (full, unmerged)
    assert peft['step_time_s'] == 2.0 and peft['infer_merged_s'] == pytest.approx(2.02)
    assert methods['full']['ratios']['vs_full']['infer_merged_s'] is None
    add_ratios(methods, 'full', None)
    assert methods['lora']['ratios']['vs_peft'] == {}


def test_round_robin_interleaves_skips_warmup_and_takes_the_median(monkeypatch):
    clock, calls = [0.0], []
    durations = {'a': iter([9.0, 1.0, 3.0, 2.0]), 'b': iter([9.0, 5.0, 4.0, 6.0])}

    def fn(name):
        def call():
            calls.append(name)
            clock[0] += next(durations[name])
        return call

    monkeypatch.setattr(timing_mod.time, 'perf_counter', lambda: clock[0])
    times = round_robin({'a': fn('a'), 'b': fn('b')}, rounds=3, warmup=1, device=torch.device('cpu'))
    assert calls == ['a', 'b'] * 4
    assert times == {'a': [1.0, 3.0, 2.0], 'b': [5.0, 4.0, 6.0]}
    assert median(times['a']) == 2.0 and median(times['b']) == 5.0
    with pytest.raises(ValueError, match='at least one round'):
        median([])


class _Attention(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:  # q: (B, H, N, D)
        k = torch.cat([q, q[:, :, :2]], dim=2)  # (B, H, N+2, D)
        v = torch.cat([k, k[..., :2]], dim=-1)  # (B, H, N+2, D+2)
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_flops_on_a_hand_computed_shape():
    # q (2, 3, 5, 4), k (2, 3, 7, 4), v (2, 3, 7, 6): QK^T 2*3*5*7*4 = 840 MACs, PV 2*3*5*7*6 = 1260
    assert count_flops(_Attention(), torch.randn(2, 3, 5, 4)) == 2100
    assert count_flops(_Attention(), torch.randn(2, 3, 5, 4), with_attention=False) == 0


def test_sdpa_handler_adds_the_attention_matmuls_of_a_vit():
    model, x = tiny_vit().eval(), torch.randn(1, 3, 32, 32)
    # 2 blocks x 2 matmuls x B*H*N*N*D with N = 16 patches + cls, H = 2, D = 32
    assert count_flops(model, x) - count_flops(model, x, with_attention=False) == 2 * 2 * (2 * 17 * 17 * 32)


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    fake = {'full': 40.0, 'lora': 10.0, 'adapter': 12.0, 'peft_lora': 11.0}
    mp.setattr(runner_mod, 'measure_step_memory',
               lambda method, *a, **k: {'method': method, 'peak_mb': fake[method], 'how': 'fake'})
    cfg = BenchConfig(presets=['lora', 'adapter'], rounds=2, warmup=0, threads=1, **TINY)
    yield run_benchmark(cfg, log=lambda m: None)
    mp.undo()


def test_report_schema_and_ratios(report, tmp_path):
    names = ['full', 'lora', 'adapter'] + (['peft_lora'] if peft_available() else [])
    assert list(report['methods']) == names
    assert {'cpu', 'cpu_cores', 'torch', 'device'} <= report['machine'].keys()
    assert report['config']['model'] == 'vit_tiny_patch16_224' and report['memory_method'] == 'fake'
    lora, full = report['methods']['lora'], report['methods']['full']
    assert {'trainable_params', 'total_params', 'gflops', 'step_time_s', 'step_times_s', 'peak_memory_mb',
            'infer_unmerged_s', 'infer_merged_s', 'mergeable', 'ratios'} <= lora.keys()
    assert len(lora['step_times_s']) == 2 and lora['step_time_s'] == median(lora['step_times_s'])
    assert lora['mergeable'] and not report['methods']['adapter']['mergeable'] and not full['mergeable']
    assert report['methods']['adapter']['infer_merged_s'] is None
    assert lora['ratios']['vs_full']['peak_memory_mb'] == 0.25
    assert lora['ratios']['vs_full']['step_time_s'] == lora['step_time_s'] / full['step_time_s']
    assert full['trainable_params'] == sum(p.numel() for p in tiny_timm().parameters())
    assert lora['gflops'] > full['gflops'] > 0
    if peft_available():
        assert lora['ratios']['vs_peft']['peak_memory_mb'] == 10.0 / 11.0
        assert report['methods']['peft_lora']['mergeable']
    path = write_json(report, tmp_path / 'out.json')
    assert json.loads(path.read_text())['methods']['lora']['trainable_params'] == lora['trainable_params']


def tiny_timm() -> nn.Module:
    return create_backbone(TINY['model'], TINY['img_size'], TINY['num_classes'])


def test_markdown_rows_and_plot(report, tmp_path):
    text = markdown_report(report)
    rows = [ln for ln in text.splitlines() if ln.startswith('| ') and not ln.startswith('| method')]
    assert [r.split(' | ')[0][2:] for r in rows] == list(report['methods'])
    adapter = next(r for r in rows if r.startswith('| adapter |'))
    assert adapter.endswith('| n/a | n/a |')  # not mergeable: no merged latency, no ratio
    assert '| 0.25 |' in next(r for r in rows if r.startswith('| lora |'))  # memory x full
    png = plot_ratios(report, tmp_path / 'ratios.png')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_step_memory_is_measured_in_a_fresh_process():
    args = {k: TINY[k] for k in ('model', 'batch_size', 'img_size', 'num_classes')}
    full = memory_mod.measure_step_memory('full', dtype='float32', device='cpu', threads=1, **args)
    assert full['method'] == 'full' and 'fresh process' in full['how']
    # AdamW state alone is 2 x 4 bytes per trainable parameter (5.5M for vit_tiny): > 40 MB
    assert full['peak_mb'] > 2 * 4 * 5.5e6 / 2 ** 20


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="unknown method.*'nope'.*lora.*peft_lora"):
        check_methods(['lora', 'nope'])
