"""tools/continual.py on a tiny setting: 2 digits domains, 16 images each, 2 epochs."""
import csv
import json
import math

import numpy as np
import pytest

from petl_vision.continual import average_incremental_accuracy, final_average_accuracy, max_forgetting
from tests.conftest import load_tool

ARGS = ['--domains', 'upright', 'inverted', '--epochs', '2', '--limit', '16', '--memory', '4', '--router-epochs', '5',
        '--threads', '1']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp('continual')
    return load_tool('continual.py').run([*ARGS, '--out', str(out)]), out


def test_matrices_follow_the_protocol(run):
    result, _ = run
    R = {m: np.array(v, dtype=float) for m, v in result['matrices'].items()}
    assert set(R) == {'oracle', 'l2r', 'arrow', 'uniform'}
    for a in R.values():
        assert a.shape == (2, 2) and math.isnan(a[0, 1]) and not np.isnan(np.tril(a)).any()
    # one adapter after stage 1: every composition is that adapter alone
    assert len({float(a[0, 0]) for a in R.values()}) == 1
    # adapters are trained in isolation and frozen afterwards: with the domain id given nothing is forgotten
    assert R['oracle'][1, 0] == R['oracle'][0, 0] and result['metrics']['oracle']['max_forgetting'] == 0.0
    assert result['routing_accuracy']['l2r'][0] == 1.0 and result['routing_accuracy']['arrow'][0] == 1.0
    assert result['test_sizes'] == [16, 16] and result['memory_per_domain'] == 4


def test_metrics_are_the_formulas_of_the_matrix(run):
    result, _ = run
    for m, a in result['matrices'].items():
        got = result['metrics'][m]
        assert got['final_average_accuracy'] == pytest.approx(final_average_accuracy(a))
        assert got['final_average_accuracy'] == pytest.approx((a[1][0] + a[1][1]) / 2)
        assert got['average_incremental_accuracy'] == pytest.approx(average_incremental_accuracy(a))
        assert got['average_incremental_accuracy'] == pytest.approx((a[0][0] + (a[1][0] + a[1][1]) / 2) / 2)
        assert got['max_forgetting'] == pytest.approx(max_forgetting(a)) == pytest.approx(a[0][0] - a[1][0])


def test_outputs_are_written(run):
    result, out = run
    saved = json.loads((out / 'results.json').read_text())  # strict json: NaN above the diagonal is null
    assert saved['matrices']['l2r'][0][1] is None and saved['config']['domains'] == ['upright', 'inverted']
    with open(out / 'accuracy_oracle.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['after_stage', 'upright', 'inverted'] and rows[1][2] == ''
    assert float(rows[2][1]) == pytest.approx(result['matrices']['oracle'][1][0], abs=1e-4)
    assert (out / 'accuracy_matrices.png').read_bytes()[:4] == b'\x89PNG'
    report = (out / 'report.md').read_text()
    assert '| arrow |' in report and 'routing accuracy' in report


def test_bad_sequences_are_refused(tmp_path):
    tool = load_tool('continual.py')
    with pytest.raises(ValueError, match='at least 2 distinct domains'):
        tool.run([*ARGS[:1], 'upright', 'upright', *ARGS[3:], '--out', str(tmp_path)])
    with pytest.raises(SystemExit):
        tool.run(['--domains', 'sideways', '--out', str(tmp_path)])
    assert not list(tmp_path.iterdir())  # nothing written
