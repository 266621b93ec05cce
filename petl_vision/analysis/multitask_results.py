"""The multi-task results table (per-task accuracy, trainable parameters per task as % of the backbone) and its
accuracy-vs-parameters plot, for runs of ``MultiTaskClassifier`` configs."""
import csv
import dataclasses
import json
from pathlib import Path

from .results import scatter_by_dataset


@dataclasses.dataclass
class MultiTaskRow:
    """One trained multi-task config: top-1 per task (percent) on ``split``, and per-task parameter counts."""

    config: str
    dataset: str
    method: str
    split: str
    top1: dict[str, float]
    adapter_per_task: dict[str, int]
    head_per_task: dict[str, int]
    percent_per_task: dict[str, float]
    train_seconds: float

    @property
    def mean_top1(self) -> float:
        return sum(self.top1.values()) / len(self.top1)

    @property
    def mean_percent(self) -> float:
        return sum(self.percent_per_task.values()) / len(self.percent_per_task)


def markdown_table(rows: list[MultiTaskRow]) -> str:
    tasks = list(dict.fromkeys(t for r in rows for t in r.top1))
    head = ['method', 'adapter per task', '% of backbone', *[f'{t} top-1' for t in tasks], 'mean top-1']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' + '---:|' * (len(head) - 1)]
    for r in rows:
        adapter = sum(r.adapter_per_task.values()) // max(len(r.adapter_per_task), 1)
        cells = [r.method, f'{adapter:,}', f'{r.mean_percent:.2f}',
                 *[f'{r.top1[t]:.2f}' if t in r.top1 else '' for t in tasks], f'{r.mean_top1:.2f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_multitask_results(rows: list[MultiTaskRow], out_dir: str | Path) -> dict[str, Path]:
    """Write ``multitask_results.md``, ``multitask_results.csv`` and ``multitask_accuracy_vs_params.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'markdown': out / 'multitask_results.md', 'csv': out / 'multitask_results.csv',
             'plot': out / 'multitask_accuracy_vs_params.png'}
    paths['markdown'].write_text(markdown_table(rows) + '\n')
    with paths['csv'].open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in dataclasses.fields(MultiTaskRow)] + ['mean_top1'])
        writer.writeheader()
        for r in rows:
            row = dataclasses.asdict(r)
            writer.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()} |
                            {'mean_top1': r.mean_top1})
    points = [(r.dataset, max(r.mean_percent, 1e-3), r.mean_top1, r.method) for r in rows]
    scatter_by_dataset(points, paths['plot'], 'trainable parameters per task, % of the backbone (log)',
                       'mean top-1 over tasks (%)')
    return paths
