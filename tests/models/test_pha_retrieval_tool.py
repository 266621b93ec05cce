"""tools/analysis/pha_retrieval.py on a tiny setting (one epoch, retriever on block 2, one domain per task): the
retrieval accuracy of each task is the diagonal of its confusion row, and the mean rows are the tasks' means."""
import csv

import pytest

from tests.conftest import run_script

TASKS = ['digit', 'parity', 'at_least_5', 'loops']


def test_the_report_is_consistent_with_its_confusion_counts(tmp_path):
    done = run_script('analysis/pha_retrieval.py', '--epochs', '1', '--features', '2', '--threads', '1', '--out',
                      str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    with (tmp_path / 'retrieval.csv').open() as f:
        rows = list(csv.DictReader(f))
    assert [r['task'] for r in rows] == [*TASKS, 'mean / all'] and {r['features'] for r in rows} == {'2'}
    lines = (tmp_path / 'retrieval.md').read_text().splitlines()
    confusion = {c[0]: [int(v) for v in c[1:]] for c in
                 ([x.strip() for x in line.strip('|').split('|')] for line in lines[-4:])}
    assert list(confusion) == TASKS
    for i, (task, row) in enumerate(zip(TASKS, rows)):
        assert sum(confusion[task]) == 50  # one domain: 5 test images of each digit
        assert float(row['retrieval']) == pytest.approx(100 * confusion[task][i] / 50)
    for key in ('top1_given', 'top1_retrieved'):
        assert float(rows[-1][key]) == pytest.approx(sum(float(r[key]) for r in rows[:4]) / 4, abs=0.01)
    assert float(rows[-1]['retrieval']) == pytest.approx(sum(confusion[t][i] for i, t in enumerate(TASKS)) / 2)
