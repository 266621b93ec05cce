"""tools/analysis/pha_sample_efficiency.py on a tiny setting (1-shot, 1 epoch, PHA and per-task LoRA, two seeds): its
tables, CSV and plot come from the runs, means and stds are over the seeds, and bad flags are refused by name."""
import csv
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_script

TASKS = ['digit', 'parity', 'at_least_5', 'loops']


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return run_script('analysis/pha_sample_efficiency.py', *args)


@pytest.fixture(scope='module')
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('pse')
    done = run_tool('--shots', '1', '--epochs', '1', '--seeds', '0', '1', '--methods', 'PHA', 'per-task LoRA',
                    '--threads', '1', '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def csv_rows(study: Path) -> list[dict]:
    with (study / 'sample_efficiency.csv').open() as f:
        return list(csv.DictReader(f))


def tables(study: Path) -> list[list[list[str]]]:
    blocks = (study / 'sample_efficiency.md').read_text().strip().split('\n\n')
    return [[[c.strip() for c in line.strip('|').split('|')] for line in b.splitlines()[2:]] for b in blocks]


def test_the_outputs_are_written_for_every_method_and_seed(study):
    for name in ('sample_efficiency.md', 'sample_efficiency.csv', 'sample_efficiency.png'):
        assert (study / name).stat().st_size > 0
    rows = csv_rows(study)
    assert [(r['method'], r['seed']) for r in rows] == [('PHA', '0'), ('per-task LoRA', '0'), ('PHA', '1'),
                                                        ('per-task LoRA', '1')]
    # 1 image per class per domain, 4 domains: digit 40, parity 8, at_least_5 8, loops 12 -> 17 per task
    assert all(float(r['train_per_task']) == 17.0 for r in rows)
    for r in rows:
        top1 = [float(r[f'{t}_top1']) for t in TASKS]
        assert float(r['mean_top1']) == pytest.approx(sum(top1) / 4)
        assert all((2 * v) == pytest.approx(round(2 * v)) for v in top1)  # 200 test images per task
    pha = [r for r in rows if r['method'] == 'PHA']
    # the tasks share their test images, so each image retrieves one task, right for one of its four copies
    assert all(float(r['retrieval_all']) == pytest.approx(25.0) for r in pha)
    assert all(r['retrieved_top1'] == '' for r in rows if r['method'] != 'PHA')
    # trainable: PHA's hypernetwork 131,880, prototypes 4 x 64, retriever 20,672, heads 1,649; LoRA 4 x 18,432 + heads
    assert {r['method']: int(r['trainable']) for r in rows} == {'PHA': 131_880 + 256 + 20_672 + 1_649,
                                                                'per-task LoRA': 4 * 18_432 + 1_649}


def test_the_tables_hold_the_means_and_stds_over_seeds(study):
    rows = csv_rows(study)
    accuracy, retrieval = tables(study)
    assert [c[2] for c in accuracy] == ['PHA', 'per-task LoRA']
    for cells in accuracy:
        mine = [r for r in rows if r['method'] == cells[2]]
        means = [float(r['mean_top1']) for r in mine]
        assert cells[-1] == f'{statistics.fmean(means):.2f} ± {statistics.stdev(means):.2f}'
        assert cells[3] == f"{int(mine[0]['trainable']):,}"
        for i, t in enumerate(TASKS):
            assert float(cells[4 + i]) == pytest.approx(statistics.fmean(float(r[f'{t}_top1']) for r in mine),
                                                        abs=0.005)
    assert len(retrieval) == 1 and retrieval[0][1] == 'PHA'
    given = [float(r['retrieved_top1']) for r in rows if r['method'] == 'PHA']
    assert retrieval[0][3] == f'{statistics.fmean(given):.2f} ± {statistics.stdev(given):.2f}'


def test_bad_flags_are_refused_by_name():
    done = run_tool('--shots', '-1')
    assert done.returncode != 0 and '--shots must be >= 0' in done.stderr
