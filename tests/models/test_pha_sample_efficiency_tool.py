"""tools/analysis/pha_sample_efficiency.py on a tiny setting (1-shot, 1 epoch): its table, CSV and plot come from
the runs, and bad flags are refused by name."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'analysis' / 'pha_sample_efficiency.py'
TASKS = ['digit', 'parity', 'at_least_5', 'loops']


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


@pytest.fixture(scope='module')
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('pse')
    done = run_tool('--shots', '1', '--epochs', '1', '--threads', '1', '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def table_rows(path: Path) -> list[list[str]]:
    lines = path.read_text().strip().splitlines()[2:]
    return [[c.strip() for c in line.strip('|').split('|')] for line in lines]


def test_the_outputs_are_written_for_every_method(study):
    for name in ('sample_efficiency.md', 'sample_efficiency.csv', 'sample_efficiency.png'):
        assert (study / name).stat().st_size > 0
    with (study / 'sample_efficiency.csv').open() as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == ['PHA', 'per-task LoRA', 'shared LoRA']
    # 1 image per class per domain, 4 domains: digit 40, parity 8, at_least_5 8, loops 12 -> 17 per task
    assert all(float(r['train_per_task']) == 17.0 for r in rows)


def test_the_table_holds_the_csvs_numbers_and_means_are_of_the_tasks(study):
    with (study / 'sample_efficiency.csv').open() as f:
        rows = list(csv.DictReader(f))
    table = table_rows(study / 'sample_efficiency.md')
    assert len(table) == len(rows)
    for cells, row in zip(table, rows):
        top1 = [float(row[f'{t}_top1']) for t in TASKS]
        assert all(0.0 <= v <= 100.0 for v in top1)
        assert float(row['mean_top1']) == pytest.approx(sum(top1) / 4)
        assert cells[2] == row['method']
        assert [float(c) for c in cells[3:]] == pytest.approx([round(v, 2) for v in top1]
                                                              + [round(float(row['mean_top1']), 2)], abs=1e-9)
        # 200 test images per task: every top-1 is a multiple of 0.5%
        assert all((2 * v) == pytest.approx(round(2 * v)) for v in top1)
    assert float(rows[0]['adapter_per_task']) != float(rows[1]['adapter_per_task'])  # PHA's count is its own


def test_bad_flags_are_refused_by_name():
    done = run_tool('--shots', '-1')
    assert done.returncode != 0 and '--shots must be >= 0' in done.stderr
