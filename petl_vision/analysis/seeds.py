"""Mean and spread over repeated suites (other seeds) of ``tools/run_benchmark_suite.py``'s CSV files."""
from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from ..evaluation.dense import DELTA_M_METRICS
from .dense_results import metric_text

# the columns summarised, in this order, where the CSVs have them (classification: top-1; dense: Δm metrics)
COLUMNS = ('val_top1', 'test_top1', *DELTA_M_METRICS.values(), 'delta_m')


def _number(text: str | None) -> float | None:
    if text in (None, '', 'None'):
        return None
    value = float(text)
    return None if math.isnan(value) else value


def read_runs(paths: Sequence[str | Path]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """``{(dataset, method): [row of each file]}``; every file must hold the same runs."""
    runs: dict[tuple[str, str], list[dict[str, str]]] = {}
    keys = None
    for path in paths:
        with Path(path).open(newline='') as f:
            rows = list(csv.DictReader(f))
        these = [(r['dataset'], r['method']) for r in rows]
        if keys is not None and sorted(these) != sorted(keys):
            raise ValueError(f'{path} holds other runs than {paths[0]}: '
                             f'{sorted(set(these) ^ set(keys))[:5]}; summarise suites of the same configs')
        keys = these
        for key, row in zip(these, rows):
            runs.setdefault(key, []).append(row)
    return runs


def summary_table(paths: Sequence[str | Path]) -> str:
    """Markdown: one row per (dataset, method), ``mean ± std`` (sample std, n = number of files) per column."""
    runs = read_runs(paths)
    present = [c for c in COLUMNS if any(_number(r.get(c)) is not None for rows in runs.values() for r in rows)]
    lines = ['| dataset | method | trainable | ' + ' | '.join(present) + ' |',
             '|---|---|---:|' + '---:|' * len(present)]
    for (dataset, method), rows in sorted(runs.items(), key=lambda kv: (kv[0][0], int(kv[1][0]['trainable']))):
        cells = []
        for c in present:
            values = [v for r in rows if (v := _number(r.get(c))) is not None]
            if not values:
                cells.append('-')
            elif len(values) == 1:
                cells.append(metric_text(values[0]))
            else:
                mean, std = statistics.mean(values), statistics.stdev(values)
                decimals = 2 if c == 'delta_m' else len(metric_text(mean).split('.')[1])  # the mean's precision
                cells.append(f'{mean:.{decimals}f} ± {std:.{decimals}f}')
        lines.append(f'| {dataset} | {method} | {int(rows[0]["trainable"]):,} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + f'\n\n{len(paths)} runs of each; ± is the sample standard deviation.'
