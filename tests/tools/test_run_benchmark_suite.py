"""tools/run_benchmark_suite.py end to end on the quick starts, cut to one short epoch: the classification table,
and for dense configs delta_m against the suite's own single-task run, the plot and the reusable baselines."""
import csv
import json
import re
import sys
from pathlib import Path

import pytest
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
SHORT = ['train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=20', 'val_dataloader.dataset.indices=20',
         'test_dataloader.dataset.indices=20', 'default_hooks.logger.interval=1']


def suite_main(monkeypatch, *argv: str) -> None:
    module = load_tool('run_benchmark_suite.py')
    monkeypatch.setattr(sys, 'argv', ['run_benchmark_suite.py', *argv])
    module.main()


def test_dense_suite_measures_delta_m_against_its_single_task_run(monkeypatch, tmp_path):
    configs = [str(ROOT / 'configs' / 'quickstart_dense' / f'{n}.py') for n in ('single-task-semseg', 'polyhistor')]
    given = tmp_path / 'given.json'  # the other tasks' baselines from elsewhere; semseg's is measured by the suite
    given.write_text(json.dumps({'semseg/mIoU': 1.0, 'sal/mIoU': 50.0, 'normals/mean': 40.0, 'depth/rmse': 1.0}))
    suite_main(monkeypatch, *configs, '--work-dir', str(tmp_path), '--single-task-baselines', str(given),
               '--cfg-options', *SHORT)
    with (tmp_path / 'dense_results.csv').open() as f:
        rows = {r['method']: r for r in csv.DictReader(f)}
    single, poly = rows['single-task-semseg'], rows['polyhistor']
    assert single['single_task'] == 'True' and single['split'] == 'test' and single['sal/mIoU'] == ''
    m = {k: float(poly[k]) for k in ('semseg/mIoU', 'sal/mIoU', 'normals/mean', 'depth/rmse')}
    expected = 100 / 4 * ((m['semseg/mIoU'] - float(single['semseg/mIoU'])) / float(single['semseg/mIoU'])
                          + (m['sal/mIoU'] - 50) / 50 - (m['normals/mean'] - 40) / 40 - (m['depth/rmse'] - 1) / 1)
    assert float(poly['delta_m']) == pytest.approx(expected)
    assert int(poly['trainable']) == 46_056 and int(poly['decoders']) == 367_216  # the digits Swin, 4 decoders
    baselines = json.loads((tmp_path / 'single_task_baselines_digits_dense_rotated_20_shot.json').read_text())
    assert baselines == {'semseg/mIoU': pytest.approx(float(single['semseg/mIoU']))}
    assert (tmp_path / 'delta_m_vs_params.png').stat().st_size > 10_000
    assert 'single-task (x 1)' in (tmp_path / 'dense_results.md').read_text()
    # the best file holds the decoders too (owner.*), so the reported test metrics are the best epoch's
    assert (tmp_path / 'polyhistor' / 'tuners_best.safetensors').exists()


def test_classification_suite_writes_its_table(monkeypatch, tmp_path):
    suite_main(monkeypatch, str(ROOT / 'configs' / 'quickstart' / 'linear.py'), '--work-dir', str(tmp_path),
               '--cfg-options', *SHORT)
    text = (tmp_path / 'results.md').read_text()
    assert '| linear |' in text and not (tmp_path / 'dense_results.md').exists()


def test_suite_console_is_one_result_line_per_run_and_the_table(monkeypatch, tmp_path, capfd):
    """No mmengine log on the console (it stays in each run's work dir), no warnings; 2 runs print 2 result lines."""
    configs = [str(ROOT / 'configs' / 'quickstart' / f'{n}.py') for n in ('linear', 'lora')]
    monkeypatch.setenv('COLUMNS', '40')  # a narrow console does not wrap the result lines
    suite_main(monkeypatch, *configs, '--work-dir', str(tmp_path), '--cfg-options', *SHORT)
    lines = capfd.readouterr().out.splitlines()
    assert [line.split(':')[0] for line in lines[:2]] == ['[1/2] linear', '[2/2] lora']
    assert re.fullmatch(r'\[2/2\] lora: val top-1 \d+\.\d\d, test top-1 \d+\.\d\d; 18,432 trainable \(no head\); \d+ s',
                        lines[1])
    assert len(lines) <= 10 and not [line for line in lines if 'WARNING' in line or 'mmengine' in line]
    log = next((tmp_path / 'lora').glob('*/*.log')).read_text()
    assert 'Epoch(train)' in log and 'Epoch(val)' in log  # the full log is still written
