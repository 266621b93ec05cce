"""The benchmark's arithmetic and outputs on tiny models (not its timings)."""
import json
import sys

import pytest
import timm
import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.benchmark import (BenchConfig, add_ratios, count_flops, markdown_report, median, plot_ratios, ratio,
                                   ratio_table, round_robin, run_benchmark, write_json)
from petl_vision.benchmark import memory as memory_mod
from petl_vision.benchmark import runner as runner_mod
from petl_vision.benchmark import timing as timing_mod
from petl_vision.benchmark.memory import saved_for_backward_mb
from petl_vision.benchmark.methods import check_methods, create_backbone, peft_available
from tests.conftest import load_tool, tiny_vit

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
    clock, cpu, calls = [0.0], [0.0], []
    durations = {'a': iter([9.0, 1.0, 3.0, 2.0]), 'b': iter([9.0, 5.0, 4.0, 6.0])}

    def fn(name):
        def call():
            calls.append(name)
            step = next(durations[name])
            clock[0] += step
            cpu[0] += step / 2  # half of the wall time on this process's CPU, the rest waiting for a core
        return call

    monkeypatch.setattr(timing_mod.time, 'perf_counter', lambda: clock[0])
    monkeypatch.setattr(timing_mod.time, 'process_time', lambda: cpu[0])
    wall, cpu_times = round_robin({'a': fn('a'), 'b': fn('b')}, rounds=3, warmup=1, device=torch.device('cpu'))
    assert calls == ['a', 'b'] * 4
    assert wall == {'a': [1.0, 3.0, 2.0], 'b': [5.0, 4.0, 6.0]}
    assert cpu_times == {'a': [0.5, 1.5, 1.0], 'b': [2.5, 2.0, 3.0]}
    assert median(wall['a']) == 2.0 and median(wall['b']) == 5.0 and median(cpu_times['b']) == 2.5
    with pytest.raises(ValueError, match='at least one round'):
        median([])
    with pytest.raises(ValueError, match='rounds must be >= 1'):
        round_robin({'a': fn('a')}, rounds=0, warmup=0, device=torch.device('cpu'))


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


def test_vit_b16_flops_with_attention():
    # built on meta (no weight init), then given uninitialised CPU storage: the count needs shapes, not values
    with torch.device('meta'):
        model = timm.create_model('vit_base_patch16_224', pretrained=False)
    model = model.to_empty(device='cpu').eval()
    attention = 12 * 2 * (12 * 197 * 197 * 64)  # blocks x (QK^T, PV) x H*N*N*D, N = 196 patches + cls
    flops = count_flops(model, torch.zeros(1, 3, 224, 224))
    assert flops - attention == 16_867_412_736  # what fvcore alone reports (16.87 GFLOPs, attention matmuls uncounted)
    assert round(flops / 1e9, 2) == 17.58


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
            'infer_unmerged_s', 'infer_merged_s', 'mergeable', 'ratios', 'saved_for_backward_mb', 'step_cpu_s',
            'infer_unmerged_cpu_s', 'infer_merged_cpu_s',
            'grad_checkpointing'} <= lora.keys()
    assert lora['grad_checkpointing'] == 'off' and len(report['machine']['load_average_before']) == 3
    assert 0 < lora['saved_for_backward_mb'] < full['saved_for_backward_mb']  # no weight-grad inputs for the MLPs
    assert len(lora['step_times_s']) == 2 and lora['step_time_s'] == median(lora['step_times_s'])
    assert len(lora['step_cpu_times_s']) == 2 and lora['step_cpu_s'] == median(lora['step_cpu_times_s'])
    assert lora['ratios']['vs_full']['step_cpu_s'] == lora['step_cpu_s'] / full['step_cpu_s']
    assert lora['mergeable'] and not report['methods']['adapter']['mergeable'] and not full['mergeable']
    assert report['methods']['adapter']['infer_merged_s'] is None
    assert lora['ratios']['vs_full']['peak_memory_mb'] == 0.25
    assert lora['ratios']['vs_full']['step_time_s'] == lora['step_time_s'] / full['step_time_s']
    assert full['trainable_params'] == sum(p.numel() for p in tiny_timm().parameters())
    assert lora['gflops'] > full['gflops'] > 0
    assert lora['gflops_merged'] == full['gflops'] and full['gflops_merged'] is None  # merging costs nothing
    assert lora['ratios']['vs_full']['gflops_merged'] == 1.0
    if peft_available():
        assert lora['ratios']['vs_peft']['peak_memory_mb'] == 10.0 / 11.0
        assert report['methods']['peft_lora']['mergeable']
    path = write_json(report, tmp_path / 'out.json')
    assert json.loads(path.read_text())['methods']['lora']['trainable_params'] == lora['trainable_params']


def tiny_timm() -> nn.Module:
    return create_backbone(TINY['model'], TINY['img_size'], TINY['num_classes'])


def test_markdown_rows_and_plot(report, tmp_path):
    text = markdown_report(report)
    figures, ratios = text.split('Ratios:')
    rows = [ln for ln in figures.splitlines() if ln.startswith('| ') and not ln.startswith('| method')]
    assert [r.split(' | ')[0][2:] for r in rows] == list(report['methods'])
    adapter = next(r for r in rows if r.startswith('| adapter |'))
    assert adapter.endswith('| n/a | n/a |')  # not mergeable: no merged latency, no ratio
    assert '| 0.25 |' in next(r for r in rows if r.startswith('| lora |'))  # memory x full
    assert 'Gradient checkpointing: off.' in figures and 'Load average' in figures
    assert ratio_table(report) in ratios
    png = plot_ratios(report, tmp_path / 'ratios.png')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_ratio_table_has_every_figure_against_both_baselines(report):
    lines = ratio_table(report).splitlines()
    head = [c.strip() for c in lines[0].strip('|').split('|')]
    n_refs = 2 if peft_available() else 1
    assert len(head) == 1 + 10 * n_refs and head[1] == 'step ×full'
    lora = next(ln for ln in lines if ln.startswith('| lora |'))
    cells = [c.strip() for c in lora.strip('|').split('|')]
    r = report['methods']['lora']
    full = report['methods']['full']
    assert float(cells[1]) == pytest.approx(r['step_time_s'] / full['step_time_s'], abs=5e-4)
    assert cells[head.index('memory ×full')] == '0.250'  # 10 / 40 (fake memory)
    trainable = float(cells[head.index('trainable ×full')])
    assert trainable == pytest.approx(r['trainable_params'] / full['trainable_params'], abs=5e-4)
    if peft_available():  # same rank on the same qkv: the same number of trainable parameters as PEFT's LoRA
        assert cells[head.index('trainable ×PEFT')] == '1.000' and cells[head.index('memory ×PEFT')] == '0.909'


def test_saved_for_backward_counts_activations_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5))
    x, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    # x (4x16 float) for the first weight grad; ReLU's output (4x32) for its mask and the second weight grad,
    # one storage; the loss: log-softmax (4x5), targets (4 int64), total weight (1 float). Weights excluded.
    expected = 4 * (4 * 16) + 4 * (4 * 32) + 4 * (4 * 5) + 8 * 4 + 4
    assert saved_for_backward_mb(model, x, y, torch.float32) * 2 ** 20 == expected
    model.requires_grad_(False)
    assert saved_for_backward_mb(model, x, y, torch.float32) == 0  # nothing trainable: no graph, nothing kept


def test_config_dtype_aliases_and_errors():
    assert BenchConfig(dtype='bf16').dtype == 'bfloat16' and BenchConfig(dtype='fp16').dtype == 'float16'
    with pytest.raises(ValueError, match='int8.*float32'):
        BenchConfig(dtype='int8')


def test_cli_writes_json_markdown_and_png_next_to_json(report, tmp_path, monkeypatch):
    tool = load_tool('benchmark.py')
    seen = {}

    def fake_run(cfg, log):
        seen['cfg'] = cfg
        return report

    monkeypatch.setattr(tool, 'run_benchmark', fake_run)
    out = tmp_path / 'out.json'
    monkeypatch.setattr(sys, 'argv', ['benchmark.py', '--model', 'vit_tiny_patch16_224', '--presets', 'lora',
                                      '--dtype', 'bf16', '--grad-checkpointing', '--json', str(out)])
    tool.main()
    assert seen['cfg'].dtype == 'bfloat16' and seen['cfg'].grad_checkpointing and seen['cfg'].presets == ['lora']
    assert json.loads(out.read_text())['methods'].keys() == report['methods'].keys()
    assert out.with_suffix('.md').read_text() == markdown_report(report)
    assert out.with_suffix('.png').read_bytes()[:4] == b'\x89PNG'


def test_step_memory_is_measured_in_a_fresh_process():
    args = {k: TINY[k] for k in ('model', 'batch_size', 'img_size', 'num_classes')}
    full = memory_mod.measure_step_memory('full', dtype='float32', device='cpu', threads=1, **args)
    assert full['method'] == 'full' and 'fresh process' in full['how']
    # AdamW state alone is 2 x 4 bytes per trainable parameter (5.5M for vit_tiny): > 40 MB
    assert full['peak_mb'] > 2 * 4 * 5.5e6 / 2 ** 20


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="unknown method.*'nope'.*lora.*peft_lora"):
        check_methods(['lora', 'nope'])


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_mixed_precision_train_step_updates_only_the_tuners(dtype):
    model = pv.apply_tuners(tiny_vit(), 'lora', trainable=('head',))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step = timing_mod.TrainStep(model, torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), dtype)
    assert step.scaler.is_enabled() == (dtype == torch.float16)  # fp16 needs loss scaling, bf16 does not
    losses = [step() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed == {n for n, p in model.named_parameters() if p.requires_grad}


def test_point_backbone_batches_and_dapt_method():
    from petl_vision.benchmark.methods import NUM_POINTS, build_method, example_batch

    x, y = example_batch('point_mae_vit_s', 2, 224, 15)
    assert x.shape == (2, NUM_POINTS, 3) and y.shape == (2,) and int(y.max()) < 15
    assert example_batch('vit_small_patch16_224', 2, 32, 10)[0].shape == (2, 3, 32, 32)
    with torch.device('meta'):
        dapt = build_method('dapt', 'point_mae_vit_s', 224, 15)
    trainable = sum(p.numel() for p in dapt.parameters() if p.requires_grad)
    assert trainable == 1_087_771  # the official DAPT count on ScanObjectNN (15 classes, SSF on)
    with pytest.raises(ValueError, match='point backbone'):
        build_method('dapt', 'vit_small_patch16_224', 32, 10)


def test_fewshot_episode_timing_arithmetic():
    from petl_vision.benchmark.fewshot import fewshot_table, time_fewshot

    result = time_fewshot('vit_tiny_patch16_224', ['frozen', 'prolad', 'tsa'], img_size=32, n_way=3, k_shot=2,
                          n_query=2, steps=2, rounds=2)
    rows = result['methods']
    assert {n: r['stages'] for n, r in rows.items()} == {'frozen': 0, 'prolad': 2, 'tsa': 1}
    for row in rows.values():
        assert len(row['episode_times_s']) == 2 and row['seconds_per_episode'] == \
            pytest.approx(sorted(row['episode_times_s'])[0] / 2 + sorted(row['episode_times_s'])[1] / 2)
    frozen = rows['frozen']['seconds_per_episode']
    prolad = rows['prolad']
    assert prolad['seconds_per_step'] == pytest.approx(max(prolad['seconds_per_episode'] - frozen, 0) / 4)
    assert prolad['projected_seconds_at_100_steps'] == pytest.approx(frozen + prolad['seconds_per_step'] * 200)
    assert 'seconds_per_step' not in rows['frozen']
    table = fewshot_table(result)
    assert '3-way 2-shot' in table and '| prolad | 2 | 2 |' in table
