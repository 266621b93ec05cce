"""The dense suite's table, delta_m against the suite's own single-task runs, CSV, plot and baselines file."""
import csv
import json

import pytest

from petl_vision.analysis.dense_results import DenseRow, add_delta_m, dense_markdown_table, single_task_baselines, \
    write_dense_results
from petl_vision.evaluation.dense import load_single_task_baselines

D = 'toy'
SINGLE = [DenseRow('c/st-semseg.py', D, 'st-semseg', 100, 10, {'semseg/mIoU': 50.0}, 'val', 1.0, single_task=True),
          DenseRow('c/st-normals.py', D, 'st-normals', 100, 12, {'normals/mean': 20.0, 'normals/rmse': 30.0}, 'val',
                   2.0, single_task=True)]
MULTI = [DenseRow('c/poly.py', D, 'polyhistor', 7, 22, {'semseg/mIoU': 55.0, 'normals/mean': 22.0}, 'val', 3.0),
         DenseRow('c/dec.py', D, 'decoders-only', 0, 22, {'semseg/mIoU': 40.0, 'normals/mean': 21.0}, 'val', 1.0),
         DenseRow('c/other.py', 'other', 'lora', 5, 22, {'semseg/mIoU': 40.0}, 'val', 1.0)]


def test_delta_m_against_the_suites_single_task_runs():
    baselines = single_task_baselines(SINGLE + MULTI)
    assert baselines == {D: {'semseg/mIoU': 50.0, 'normals/mean': 20.0}}  # each task's delta_m metric only
    rows = {r.method: r for r in add_delta_m(SINGLE + MULTI, baselines)}
    # (+(55 - 50) / 50 - (22 - 20) / 20) / 2 = (0.1 - 0.1) / 2 = 0; (-(40 - 50) / 50 ... ) = (-0.2 - 0.05) / 2
    assert rows['polyhistor'].delta_m == pytest.approx(0.0)
    assert rows['decoders-only'].delta_m == pytest.approx(-12.5)
    assert rows['lora'].delta_m is None  # no baselines for its dataset
    assert rows['st-semseg'].delta_m is None


def test_table_merges_single_task_runs_into_one_row_first():
    rows = add_delta_m(SINGLE + MULTI, single_task_baselines(SINGLE))
    lines = dense_markdown_table(rows).splitlines()
    assert lines[0].split(' | ')[4:7] == ['semseg/mIoU', 'normals/mean (lower better)', 'delta_m %']
    cells = [line.split(' | ') for line in lines[2:]]
    assert [c[1] for c in cells] == ['lora', 'single-task (x 2)', 'decoders-only', 'polyhistor']  # by dataset
    single = cells[1]
    assert single[2:7] == ['200', '22', '50.00', '20.00', '+0.00']  # summed parameters, delta_m 0 by definition
    assert cells[3][2:7] == ['7', '22', '55.00', '22.00', '+0.00'] and cells[2][6] == '-12.50'
    assert cells[0][5:7] == ['-', '-']


def test_two_single_task_runs_of_one_metric_are_refused():
    with pytest.raises(ValueError, match='two single-task runs'):
        single_task_baselines(SINGLE + SINGLE[:1])


def test_write_dense_results(tmp_path):
    rows = add_delta_m(SINGLE + MULTI, single_task_baselines(SINGLE))
    paths = write_dense_results(rows, tmp_path)
    with paths['csv'].open() as f:
        records = list(csv.DictReader(f))
    assert [r['method'] for r in records] == ['st-semseg', 'st-normals', 'polyhistor', 'decoders-only', 'lora']
    assert records[1]['normals/rmse'] == '30.0' and records[0]['normals/rmse'] == ''
    assert paths['plot'].read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    baselines = paths[f'baselines:{D}']
    assert json.loads(baselines.read_text()) == {'semseg/mIoU': 50.0, 'normals/mean': 20.0}
    assert load_single_task_baselines(str(baselines)) == {'semseg/mIoU': 50.0, 'normals/mean': 20.0}


def test_plot_without_single_task_runs_says_so(tmp_path):
    paths = write_dense_results(MULTI, tmp_path)  # no baselines: no delta_m anywhere
    assert paths['plot'].stat().st_size > 5_000 and '| - | val |' in paths['markdown'].read_text()
