"""One results table (markdown + CSV) and an accuracy-vs-trainable-parameters plot for a set of runs."""
import csv
import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


@dataclasses.dataclass
class SuiteRow:
    """One trained config: its plan, trainable parameters (without the head) and accuracies in percent."""

    config: str
    dataset: str
    method: str
    trainable: int
    head: int
    val_top1: float | None
    test_top1: float | None
    train_seconds: float


def _fmt(value: float | None) -> str:
    return '-' if value is None else f'{value:.2f}'


def _score(row: SuiteRow) -> float | None:
    return row.test_top1 if row.test_top1 is not None else row.val_top1


def _delta(row: SuiteRow, ref: SuiteRow | None) -> str:
    if ref is None or _score(row) is None or _score(ref) is None:
        return '-'
    return f'{_score(row) - _score(ref):+.2f}'


def markdown_table(rows: list[SuiteRow]) -> str:
    """One row per run, by dataset and trainable parameters; where the same dataset has a ``linear`` and a
    ``full`` run, each row also shows its gain over linear probing and its gap to full fine-tuning (test top-1,
    val where no test ran) and its trainable share of full fine-tuning."""
    lines = ['| dataset | method | trainable (no head) | % of full | head | val top-1 | test top-1 | vs linear | '
             'vs full | train s |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in sorted(rows, key=lambda r: (r.dataset, r.trainable)):
        same = {x.method: x for x in rows if x.dataset == r.dataset}
        full = same.get('full')
        share = f'{100 * r.trainable / full.trainable:.2f}' if full and full.trainable else '-'
        lines.append(f'| {r.dataset} | {r.method} | {r.trainable:,} | {share} | {r.head:,} | {_fmt(r.val_top1)} | '
                     f'{_fmt(r.test_top1)} | {_delta(r, same.get("linear"))} | {_delta(r, full)} | '
                     f'{r.train_seconds:.0f} |')
    return '\n'.join(lines)


def write_results(rows: list[SuiteRow], out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.md``, ``results.csv`` and ``accuracy_vs_params.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'markdown': out / 'results.md', 'csv': out / 'results.csv', 'plot': out / 'accuracy_vs_params.png'}
    paths['markdown'].write_text(markdown_table(rows) + '\n')
    with paths['csv'].open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in dataclasses.fields(SuiteRow)])
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
    plot_accuracy_vs_params(rows, paths['plot'])
    return paths


def plot_accuracy_vs_params(rows: list[SuiteRow], path: str | Path) -> None:
    """Test top-1 (val where no test was run) against trainable parameters, log x, one colour per dataset."""
    points = [(r.dataset, max(r.trainable, 1), _score(r), r.method) for r in rows]
    scatter_by_dataset(points, path, 'trainable parameters without head (log)', 'top-1 accuracy (%)')


def scatter_by_dataset(points: list[tuple[str, float, float | None, str]], path: str | Path, xlabel: str,
                       ylabel: str, empty_note: str = 'no results', zero_line: bool = False) -> None:
    """Write a labelled scatter plot of ``(dataset, x, y, name)`` points (y None: left out), log x, one colour per
    dataset; ``empty_note`` is written on the axes when no point has a y."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [p for p in points if p[2] is not None]
    for dataset in sorted({p[0] for p in points}):
        pts = [p[1:] for p in points if p[0] == dataset]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=dataset)
        for x, y, name in pts:
            ax.annotate(name, (x, y), textcoords='offset points', xytext=(4, 3), fontsize=8)
    if zero_line:
        ax.axhline(0.0, color='grey', lw=0.8)
    if points:
        ax.set_xscale('log')
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty_note, ha='center', va='center', transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
