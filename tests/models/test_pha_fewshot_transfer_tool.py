"""tools/analysis/pha_fewshot_transfer.py on a tiny setting (1 epoch of PHA on three tasks, 1 shot, 2 steps, two
seeds): the table holds the CSV's means, PHA's transfer trains the prototype and head only, bad flags are refused."""
import csv
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_script



def run_tool(*args: str) -> subprocess.CompletedProcess:
    return run_script('analysis/pha_fewshot_transfer.py', *args)


@pytest.fixture(scope='module')
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('pft')
    done = run_tool('--epochs', '1', '--shots', '1', '--seeds', '0', '1', '--steps', '2', '--methods',
                    'PHA, nearest prototype', 'head only', '--threads', '1', '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_rows_counts_and_table_means(study):
    for name in ('fewshot_transfer.md', 'fewshot_transfer.csv', 'fewshot_transfer.png'):
        assert (study / name).stat().st_size > 0
    with (study / 'fewshot_transfer.csv').open() as f:
        rows = list(csv.DictReader(f))
    assert [(r['method'], r['seed']) for r in rows] == [('PHA, nearest prototype', '0'), ('head only', '0'),
                                                        ('PHA, nearest prototype', '1'), ('head only', '1')]
    # loops at 1 shot: 1 image per class (3) in each of 4 domains; trainable: the prototype 64 + a 96 -> 3 head
    assert {r['train_images'] for r in rows} == {'12'}
    assert {r['method']: int(r['trainable']) for r in rows} == {'PHA, nearest prototype': 64 + 291, 'head only': 291}
    assert {r['init_from'] for r in rows if r['method'].startswith('PHA')} <= {'digit', 'parity', 'at_least_5'}
    assert all((2 * float(r['test_top1'])) == pytest.approx(round(2 * float(r['test_top1']))) for r in rows)
    table = (study / 'fewshot_transfer.md').read_text()
    assert table.startswith('Held-out task: loops; PHA trained on digit, parity, at_least_5')
    for method in ('PHA, nearest prototype', 'head only'):
        accs = [float(r['test_top1']) for r in rows if r['method'] == method]
        assert f'{statistics.fmean(accs):.2f} ± {statistics.stdev(accs):.2f}' in table


def test_bad_flags_are_refused_by_name():
    done = run_tool('--shots', '0')
    assert done.returncode != 0 and '--shots must be >= 1' in done.stderr
