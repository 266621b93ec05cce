"""Mean ± std over suites of the same configs run with other seeds."""
import csv

import pytest

from petl_vision.analysis.seeds import summary_table

FIELDS = ['config', 'dataset', 'method', 'trainable', 'decoders', 'single_task', 'delta_m', 'semseg/mIoU',
          'normals/mean']


def write(path, rows):
    with path.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(dict(zip(FIELDS, r)) for r in rows)
    return path


def test_mean_and_sample_std_per_method(tmp_path):
    a = write(tmp_path / 'a.csv', [('c/p.py', 'd', 'poly', 46, 9, False, -3.0, 74.0, 3.0),
                                    ('c/s.py', 'd', 'single', 800, 9, True, '', 81.0, '')])
    b = write(tmp_path / 'b.csv', [('c/s.py', 'd', 'single', 800, 9, True, '', 83.0, ''),
                                    ('c/p.py', 'd', 'poly', 46, 9, False, -1.0, 76.0, 3.5)])
    lines = summary_table([a, b]).splitlines()
    assert lines[0] == '| dataset | method | trainable | semseg/mIoU | normals/mean | delta_m |'
    assert lines[2] == '| d | poly | 46 | 75.00 ± 1.41 | 3.25 ± 0.35 | -2.00 ± 1.41 |'
    assert lines[3] == '| d | single | 800 | 82.00 ± 1.41 | - | - |'


def test_suites_of_other_configs_are_refused(tmp_path):
    a = write(tmp_path / 'a.csv', [('c/p.py', 'd', 'poly', 46, 9, False, -3.0, 74.0, 3.0)])
    b = write(tmp_path / 'b.csv', [('c/l.py', 'd', 'lora', 14, 9, False, -1.0, 76.0, 3.5)])
    with pytest.raises(ValueError, match='other runs'):
        summary_table([a, b])
