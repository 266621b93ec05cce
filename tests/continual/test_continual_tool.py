"""tools/continual.py on a tiny config (3 digits domains, 16 images each, 1 epoch): the outputs, the metrics of the
matrix, a run stopped after 2 stages and resumed equal to an uninterrupted one, and a work dir never replaced
silently."""
import csv
import json
import math

import numpy as np
import pytest

from petl_vision.continual import average_incremental_accuracy, final_average_accuracy, max_forgetting
from tests.conftest import load_tool

CONFIG = """
_base_ = ['{root}/configs/continual/_base_/digits_runtime.py']
_p = [dict(type='PackInputs')]
sequence = dict(protocol='domain', domains=[
    dict(name=d, train=dict(type='DigitsMultiTask', domain=d, split='train', indices=16, pipeline=_p),
         test=dict(type='DigitsMultiTask', domain=d, split='test', indices=16, pipeline=_p))
    for d in ('upright', 'inverted', 'rotated_90')])
adapter = dict(plan=[dict(type='LoRA', targets='blocks.*.attn.qkv', rank=2), dict(type='LoRA', targets='head', rank=2)])
recipe = dict(epochs=1, lr=5e-3, batch_size=8)
memory = dict(per_task=4)
router = dict(hidden=16, epochs=5)
"""


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    from tests.conftest import TOOLS

    path = tmp_path_factory.mktemp('cfg') / 'tiny_continual.py'
    path.write_text(CONFIG.format(root=TOOLS.parent))
    return str(path)


@pytest.fixture(scope='module')
def full(config, tmp_path_factory):
    out = tmp_path_factory.mktemp('full')
    return load_tool('continual.py').run([config, '--work-dir', str(out), '--threads', '1']), out


def test_matrices_and_metrics(full):
    result, _ = full
    R = {m: np.array(v, dtype=float) for m, v in result['matrices'].items()}
    assert set(R) == {'oracle', 'l2r', 'arrow', 'uniform', 'seq_ft', 'nearest_prototype', 'simplecil'}
    for a in R.values():
        assert a.shape == (3, 3) and math.isnan(a[0, 1]) and not np.isnan(np.tril(a)).any()
    assert R['oracle'][2, 0] == R['oracle'][0, 0]  # adapters frozen once trained
    assert result['test_sizes'] == [16, 16, 16] and result['completed'] == 3
    for m, a in result['matrices'].items():
        got = result['metrics'][m]
        assert got['final_average_accuracy'] == pytest.approx(final_average_accuracy(a))
        assert got['average_incremental_accuracy'] == pytest.approx(average_incremental_accuracy(a))
        assert got['max_forgetting'] == pytest.approx(max_forgetting(a))
    assert set(result['routing_accuracy']) == {'l2r', 'arrow', 'nearest_prototype'}


def test_outputs_are_written(full):
    result, out = full
    saved = json.loads((out / 'results.json').read_text())  # strict json: NaN above the diagonal is null
    assert saved['matrices']['l2r'][0][1] is None
    assert json.loads((out / 'sequence.json').read_text())['names'] == ['upright', 'inverted', 'rotated_90']
    with open(out / 'accuracy_oracle.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['after_stage', 'upright', 'inverted', 'rotated_90'] and rows[1][2] == ''
    assert float(rows[3][1]) == pytest.approx(result['matrices']['oracle'][2][0], abs=1e-4)
    for png in ('accuracy_matrices.png', 'stage_accuracy.png'):
        assert (out / png).read_bytes()[:4] == b'\x89PNG'
    report = (out / 'report.md').read_text()
    assert '| simplecil |' in report and 'routing accuracy' in report and 'after stage | 1 | 2 | 3 |' in report
    assert (out / 'stages' / '2_rotated_90').is_dir()  # each stage's adapter trained by its own mmengine Runner
    assert sorted(p.name for p in (out / 'state' / 'adapters').iterdir()) == [
        'inverted.safetensors', 'rotated_90.safetensors', 'seq_ft.safetensors', 'upright.safetensors']


def test_stopped_and_resumed_equals_uninterrupted(config, full, tmp_path):
    tool = load_tool('continual.py')
    first = tool.run([config, '--work-dir', str(tmp_path), '--stop-after', '2', '--threads', '1'])
    assert first['completed'] == 2 and math.isnan(first['matrices']['oracle'][2][0])
    assert json.loads((tmp_path / 'state' / 'progress.json').read_text())['completed'] == 2
    with pytest.raises(tool.WorkDirInUse, match='Continue it with --resume'):
        tool.run([config, '--work-dir', str(tmp_path), '--threads', '1'])
    assert (tmp_path / 'state' / 'progress.json').exists()  # the refusal deleted nothing
    resumed = tool.run([config, '--work-dir', str(tmp_path), '--resume', '--threads', '1'])
    assert resumed['completed'] == 3
    for m, a in full[0]['matrices'].items():
        np.testing.assert_array_equal(np.array(resumed['matrices'][m], dtype=float), np.array(a, dtype=float))
    assert resumed['routing_accuracy'] == full[0]['routing_accuracy']
    with pytest.raises(tool.WorkDirInUse, match='another config'):
        tool.run([config, '--work-dir', str(tmp_path), '--resume', '--cfg-options', 'recipe.lr=0.1'])


def test_bad_configs_are_refused(config, tmp_path):
    tool = load_tool('continual.py')
    with pytest.raises(ValueError, match='unknown methods'):
        tool.run([config, '--work-dir', str(tmp_path), '--cfg-options', 'methods=[oracle,ewc]'])
    with pytest.raises(SystemExit):
        tool.run([config, '--stop-after', '0'])
    assert not list(tmp_path.iterdir())  # nothing written


def test_overwrite_deletes_the_earlier_run_first(config, tmp_path):
    tool = load_tool('continual.py')
    tool.run([config, '--work-dir', str(tmp_path), '--stop-after', '2', '--threads', '1'])
    (tmp_path / 'notes.txt').write_text('mine')  # not a file of the run: kept
    again = tool.run([config, '--work-dir', str(tmp_path), '--stop-after', '1', '--overwrite', '--threads', '1'])
    assert again['completed'] == 1
    assert json.loads((tmp_path / 'state' / 'progress.json').read_text())['completed'] == 1
    assert not (tmp_path / 'stages' / '1_inverted').exists() and (tmp_path / 'notes.txt').exists()
