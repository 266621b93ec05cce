"""PHA's sample-efficiency study on the digits tasks: mean test top-1 against training shots, PHA vs two LoRAs.

    python tools/analysis/pha_sample_efficiency.py --out work_dirs/pha_sample_efficiency
    python tools/analysis/pha_sample_efficiency.py --shots 1 2 5 10 --epochs 5 --out DIR

For every ``--shots`` k (images per class of each task in each of the four domains, ``DigitsMultiTask(shots=k)``:
nested, so the 2-shot set holds the 1-shot one; ``0`` means the whole train split), three multi-task runs are
trained through the mmengine Runner with the same recipe (the quick start's AdamW 3e-3, cosine, batch 32,
``--epochs`` epochs; PHA's hypernetwork at 0.1x as its config says): PHA (``configs/pha/pha_digits_multitask.py``),
one LoRA per task and one shared LoRA (``configs/quickstart_multitask/``). Each run keeps its best epoch by mean
validation top-1 and is tested once (200 test images per task). Written to ``--out``: ``sample_efficiency.md``,
``sample_efficiency.csv`` and ``sample_efficiency.png`` (mean test top-1 against training images per task, one line
per method, adapter parameters per task in the legend).
"""
import argparse
import csv
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from petl_vision.runtime_threads import add_threads_argument  # noqa: E402
from petl_vision.setup_env import console_log_level, register_all_modules, set_torch_threads  # noqa: E402

METHODS = {'PHA': 'configs/pha/pha_digits_multitask.py',
           'per-task LoRA': 'configs/quickstart_multitask/lora.py',
           'shared LoRA': 'configs/quickstart_multitask/shared_lora.py'}
FIELDS = ['method', 'shots', 'train_per_task', 'mean_top1', 'adapter_per_task', 'train_seconds']


def _suite():
    """tools/run_benchmark_suite.py as a module (its best-epoch restore and test of a multi-task run)."""
    spec = importlib.util.spec_from_file_location('_suite', ROOT / 'tools' / 'run_benchmark_suite.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def study_config(method: str, shots: int, epochs: int, work_dir: Path) -> Config:
    """The method's digits config at ``shots`` per class per domain (0: all) and ``epochs`` epochs."""
    cfg = Config.fromfile(str(ROOT / METHODS[method]))
    for task_set in cfg.train_dataloader.dataset.datasets.values():
        task_set.shots = shots or None
    cfg.train_cfg.max_epochs = epochs
    cfg.work_dir = str(work_dir / f'shots{shots}' / method.replace(' ', '_'))
    cfg.experiment_name = f'{method}_shots{shots}'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)  # the best tuners are saved apart
    return cfg


def run(method: str, shots: int, epochs: int, work_dir: Path, suite) -> dict:
    """Train, restore the best epoch, test: one CSV row (top-1 in percent)."""
    cfg = study_config(method, shots, epochs, work_dir)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    row = suite.multitask_row(Path(METHODS[method]), cfg, runner, seconds)
    sizes = {t: len(d) for t, d in runner.train_dataloader.dataset.datasets.items()}
    return {'method': method, 'shots': shots, 'train_per_task': sum(sizes.values()) / len(sizes),
            **{f'{t}_top1': round(v, 4) for t, v in row.top1.items()}, 'mean_top1': round(row.mean_top1, 4),
            'adapter_per_task': sum(row.adapter_per_task.values()) / len(row.adapter_per_task),
            'train_seconds': round(seconds, 1)}


def write_table(rows: list[dict], path: Path) -> str:
    tasks = [k.removesuffix('_top1') for k in rows[0] if k.endswith('_top1') and k != 'mean_top1']
    lines = ['| shots | train images / task | method | ' + ' | '.join(tasks) + ' | mean top-1 |',
             '|' + '---|' * (len(tasks) + 4)]
    for r in rows:
        cells = [str(r['shots'] or 'all'), f"{r['train_per_task']:.0f}", r['method'],
                 *[f"{r[f'{t}_top1']:.2f}" for t in tasks], f"{r['mean_top1']:.2f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    text = '\n'.join(lines) + '\n'
    path.write_text(text)
    return text


def write_csv(rows: list[dict], path: Path) -> None:
    fields = FIELDS[:3] + [k for k in rows[0] if k.endswith('_top1') and k != 'mean_top1'] + FIELDS[3:]
    with path.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r['method'] for r in rows):
        mine = sorted((r for r in rows if r['method'] == method), key=lambda r: r['train_per_task'])
        ax.plot([r['train_per_task'] for r in mine], [r['mean_top1'] for r in mine], marker='o',
                label=f"{method} ({mine[0]['adapter_per_task']:,.0f} adapter params per task)")
    ax.set_xscale('log')
    ticks = sorted({r['train_per_task'] for r in rows})
    ax.set_xticks(ticks, [f'{t:.0f}' for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel('training images per task (mean over the 4 tasks, log)')
    ax.set_ylabel('mean test top-1 over 4 tasks (%)')
    ax.set_title('digits multi-task: accuracy vs training data')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shots', type=int, nargs='+', default=[1, 2, 5, 10],
                        help='images per class per domain of each task (0: the whole train split)')
    parser.add_argument('--epochs', type=int, default=5, help='epochs of every run (the same for all methods)')
    parser.add_argument('--methods', nargs='+', choices=list(METHODS), default=list(METHODS))
    parser.add_argument('--out', default='work_dirs/pha_sample_efficiency', help='folder of the table, CSV, plot')
    add_threads_argument(parser)
    args = parser.parse_args()
    if any(s < 0 for s in args.shots) or args.epochs < 1:
        parser.error(f'--shots must be >= 0 (0: all) and --epochs >= 1; got {args.shots} and {args.epochs}')
    try:
        set_torch_threads(args.threads)
    except ValueError as err:
        parser.error(str(err))
    return args


def main() -> None:
    args = parse_args()
    register_all_modules()
    out, suite = Path(args.out), _suite()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with console_log_level('WARNING'):
        for shots in args.shots:
            for method in args.methods:
                rows.append(run(method, shots, args.epochs, out / 'runs', suite))
                r = rows[-1]
                print(f"shots {shots or 'all'}: {method} mean test top-1 {r['mean_top1']:.2f} "
                      f"({r['train_seconds']:.0f} s)", flush=True)
    print(write_table(rows, out / 'sample_efficiency.md'))
    write_csv(rows, out / 'sample_efficiency.csv')
    plot(rows, out / 'sample_efficiency.png')
    print(f'written: {out / "sample_efficiency.md"}, {out / "sample_efficiency.csv"}, {out / "sample_efficiency.png"}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
