"""Result tables and the delta_m-vs-parameters plot of multi-task dense suites (Polyhistor's benchmark).

A suite holds multi-task runs and, per dataset, single-task runs (one task each, full fine-tuning): the
single-task runs are the baselines of ``delta_m`` (:func:`petl_vision.evaluation.dense.delta_m`), shown together
as one ``single-task (x T)`` row with their summed parameters, as the papers do.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..evaluation.dense import DELTA_M_METRICS, LOWER_IS_BETTER, delta_m
from .results import scatter_by_dataset


@dataclasses.dataclass
class DenseRow:
    """One trained dense config: its trainable parameters (backbone side, decoders apart) and its metrics
    (``'semseg/mIoU'``, ``'normals/mean'``, ... on ``split``)."""

    config: str
    dataset: str
    method: str
    trainable: int
    decoders: int
    metrics: dict[str, float]
    split: str
    train_seconds: float
    single_task: bool = False
    delta_m: float | None = None

    @property
    def tasks(self) -> list[str]:
        return [t for t, m in DELTA_M_METRICS.items() if m in self.metrics]


def single_task_baselines(rows: Sequence[DenseRow]) -> dict[str, dict[str, float]]:
    """``{dataset: {'task/metric': value}}`` from the single-task rows (the delta_m metric of their task)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r.single_task:
            if len(r.tasks) != 1:
                raise ValueError(f'{r.config} is marked single_task but reports tasks {r.tasks}')
            metric = DELTA_M_METRICS[r.tasks[0]]
            if metric in out.get(r.dataset, {}):
                raise ValueError(f'two single-task runs of {metric} on {r.dataset}; keep one in the suite')
            out.setdefault(r.dataset, {})[metric] = r.metrics[metric]
    return out


def add_delta_m(rows: Sequence[DenseRow], baselines: Mapping[str, Mapping[str, float]]) -> list[DenseRow]:
    """Rows with ``delta_m`` filled in where the dataset's baselines cover every task of the row."""
    out = []
    for r in rows:
        base = baselines.get(r.dataset, {})
        wanted = {DELTA_M_METRICS[t]: base.get(DELTA_M_METRICS[t]) for t in r.tasks}
        value = r.delta_m
        if not r.single_task and wanted and None not in wanted.values():
            value = delta_m(r.metrics, wanted)
        out.append(dataclasses.replace(r, delta_m=value))
    return out


def summarise_single_task(rows: Sequence[DenseRow]) -> list[DenseRow]:
    """The multi-task rows plus, per dataset, one ``single-task (x T)`` row merging its single-task runs
    (delta_m 0 by definition)."""
    multi = [r for r in rows if not r.single_task]
    merged = []
    for dataset in sorted({r.dataset for r in rows if r.single_task}):
        runs = [r for r in rows if r.single_task and r.dataset == dataset]
        metrics = {k: v for r in runs for k, v in r.metrics.items()}
        merged.append(DenseRow(config=', '.join(r.config for r in runs), dataset=dataset,
                               method=f'single-task (x {len(runs)})', trainable=sum(r.trainable for r in runs),
                               decoders=sum(r.decoders for r in runs), metrics=metrics, split=runs[0].split,
                               train_seconds=sum(r.train_seconds for r in runs), single_task=True, delta_m=0.0))
    return merged + multi


def metric_text(value: float) -> str:
    """Two decimals, three below 1 (depth RMSE in metres differs in the third)."""
    return f'{value:.3f}' if abs(value) < 1 else f'{value:.2f}'


def _columns(rows: Sequence[DenseRow]) -> list[str]:
    present = {m for r in rows for m in r.metrics}
    return [m for m in DELTA_M_METRICS.values() if m in present]


def _arrow(metric: str) -> str:
    return '(lower better)' if metric in LOWER_IS_BETTER else ''


def dense_markdown_table(rows: Sequence[DenseRow]) -> str:
    """One row per method (single-task runs merged), by dataset and trainable parameters: the delta_m metric of
    every task and delta_m in percent."""
    rows = summarise_single_task(rows)
    cols = _columns(rows)
    head = ['dataset', 'method', 'trainable (no decoders)', 'decoders', *[f'{c} {_arrow(c)}'.strip() for c in cols],
            'delta_m %', 'split', 'train s']
    lines = ['| ' + ' | '.join(head) + ' |', '|---|---|' + '---:|' * (len(head) - 2)]
    for r in sorted(rows, key=lambda r: (r.dataset, not r.single_task, r.trainable + r.decoders)):
        values = ['-' if c not in r.metrics else metric_text(r.metrics[c]) for c in cols]
        dm = '-' if r.delta_m is None else f'{r.delta_m:+.2f}'
        lines.append(f'| {r.dataset} | {r.method} | {r.trainable:,} | {r.decoders:,} | ' + ' | '.join(values)
                     + f' | {dm} | {r.split} | {r.train_seconds:.0f} |')
    return '\n'.join(lines)


def plot_delta_m_vs_params(rows: Sequence[DenseRow], path: str | Path) -> None:
    """delta_m against all trainable parameters (decoders included, as the papers count), log x."""
    points = [(r.dataset, r.trainable + r.decoders, r.delta_m, r.method) for r in summarise_single_task(rows)]
    scatter_by_dataset(points, path, 'trainable parameters with decoders (log)', 'delta_m vs single-task (%)',
                       empty_note='no delta_m: the suite has no single-task runs\n(or pass --single-task-baselines)',
                       zero_line=True)


def _slug(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9]+', '_', text).strip('_').lower()


def write_dense_results(rows: Sequence[DenseRow], out_dir: str | Path) -> dict[str, Path]:
    """Write ``dense_results.md``, ``dense_results.csv`` (every run, metrics flattened),
    ``delta_m_vs_params.png`` and ``single_task_baselines_<dataset>.json`` (reusable with
    ``MultiTaskDenseMetric(single_task_baselines=...)`` or the suite's ``--single-task-baselines``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'markdown': out / 'dense_results.md', 'csv': out / 'dense_results.csv',
             'plot': out / 'delta_m_vs_params.png'}
    paths['markdown'].write_text(dense_markdown_table(rows) + '\n')
    metric_names = sorted({m for r in rows for m in r.metrics})
    fields = [f.name for f in dataclasses.fields(DenseRow) if f.name != 'metrics'] + metric_names
    with paths['csv'].open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            record = {k: v for k, v in dataclasses.asdict(r).items() if k != 'metrics'}
            writer.writerow({**record, **r.metrics})
    plot_delta_m_vs_params(rows, paths['plot'])
    for dataset, baselines in single_task_baselines(rows).items():
        path = out / f'single_task_baselines_{_slug(dataset)}.json'
        path.write_text(json.dumps(baselines, indent=2) + '\n')
        paths[f'baselines:{dataset}'] = path
    return paths
