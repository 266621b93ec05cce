"""PHA's sample-efficiency study on the digits tasks: mean test top-1 against training shots, PHA vs five baselines.

    python tools/analysis/pha_sample_efficiency.py --out work_dirs/pha_sample_efficiency
    python tools/analysis/pha_sample_efficiency.py --shots 1 2 5 10 --epochs 8 --seeds 0 1 2 --out DIR

For every ``--shots`` k (images per class of each task in each of the four domains, ``DigitsMultiTask(shots=k)``:
nested, so the 2-shot set holds the 1-shot one; ``0`` means the whole train split) and every ``--seeds`` seed, each
method's multi-task run is trained through the mmengine Runner with the same recipe (the quick start's AdamW 3e-3,
cosine, batch 32, ``--epochs`` epochs; the hypernetworks at 0.1x as their configs say): PHA
(``configs/pha/pha_digits_multitask.py``), Hyperformer++ and Polyhistor-Lite (``configs/pha/``), one Adapter per
task, one LoRA per task and one shared LoRA (``configs/quickstart_multitask/``). Each run keeps its best epoch by mean
validation top-1 and is tested once (200 test images per task); PHA is tested twice, with the given and with the
retrieved prototypes, and its retrieval accuracy (how often the nearest prototype is the sample's task) is
recorded. Written to ``--out``: ``sample_efficiency.md`` (mean +- std over the seeds), ``sample_efficiency.csv``
(one row per run) and ``sample_efficiency.png`` (mean test top-1 against training images per task, one line per
method, trainable parameters in the legend).
"""
import argparse
import csv
import importlib.util
import statistics
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

from petl_vision.runtime_threads import add_threads_argument, apply_threads_argument  # noqa: E402
from petl_vision.setup_env import console_log_level, register_all_modules  # noqa: E402

METHODS = {'PHA': 'configs/pha/pha_digits_multitask.py',
           'Hyperformer': 'configs/pha/hyperformer_digits_multitask.py',
           'Polyhistor-Lite': 'configs/pha/polyhistor-lite_digits_multitask.py',
           'per-task Adapter': 'configs/quickstart_multitask/adapter.py',
           'per-task LoRA': 'configs/quickstart_multitask/lora.py',
           'shared LoRA': 'configs/quickstart_multitask/shared_lora.py'}
FIELDS = ['method', 'shots', 'seed', 'train_per_task']
TAIL = ['mean_top1', 'retrieved_top1', 'retrieval_all', 'adapter_per_task', 'trainable', 'train_seconds']


def _suite():
    """tools/run_benchmark_suite.py as a module (its best-epoch restore and test of a multi-task run)."""
    spec = importlib.util.spec_from_file_location('_suite', ROOT / 'tools' / 'run_benchmark_suite.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def study_config(method: str, shots: int, epochs: int, seed: int, work_dir: Path) -> Config:
    """The method's digits config at ``shots`` per class per domain (0: all), ``epochs`` epochs and ``seed``."""
    cfg = Config.fromfile(str(ROOT / METHODS[method]))
    for task_set in cfg.train_dataloader.dataset.datasets.values():
        task_set.shots = shots or None
    cfg.train_cfg.max_epochs = epochs
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = str(work_dir / f'seed{seed}' / f'shots{shots}' / method.replace(' ', '_'))
    cfg.experiment_name = f'{method}_shots{shots}_seed{seed}'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)  # the best tuners are saved apart
    return cfg


def run(method: str, shots: int, epochs: int, seed: int, work_dir: Path, suite) -> dict:
    """Train, restore the best epoch, test (PHA: with given and retrieved prototypes): one CSV row (percent)."""
    cfg = study_config(method, shots, epochs, seed, work_dir)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    row = suite.multitask_row(Path(METHODS[method]), cfg, runner, seconds)
    sizes = {t: len(d) for t, d in runner.train_dataloader.dataset.datasets.items()}
    return {'method': method, 'shots': shots, 'seed': seed, 'train_per_task': sum(sizes.values()) / len(sizes),
            **{f'{t}_top1': round(v, 4) for t, v in row.top1.items()}, 'mean_top1': round(row.mean_top1, 4),
            **retrieved(runner), 'adapter_per_task': sum(row.adapter_per_task.values()) / len(row.adapter_per_task),
            'trainable': runner.model.parameter_counts()['trainable'], 'train_seconds': round(seconds, 1)}


def retrieved(runner: Runner) -> dict:
    """A PHA model's test with the retrieved prototypes (the best epoch is loaded): mean top-1, retrieval accuracy."""
    if not hasattr(runner.model, 'task_source'):
        return {'retrieved_top1': '', 'retrieval_all': ''}
    runner.model.task_source = 'retrieved'
    metrics = runner.test()
    runner.model.task_source = 'given'
    return {'retrieved_top1': round(metrics['mean/top1'], 4), 'retrieval_all': round(metrics['retrieval/all'], 4)}


def summary(rows: list[dict]) -> list[dict]:
    """Mean and std over the seeds of every (shots, method): ``<key>`` and ``<key>_std`` for each number."""
    out = []
    for key in dict.fromkeys((r['shots'], r['method']) for r in rows):
        mine = [r for r in rows if (r['shots'], r['method']) == key]
        agg = {'shots': key[0], 'method': key[1], 'seeds': len(mine)}
        for k in mine[0]:
            values = [r[k] for r in mine]
            if k not in FIELDS[:3] and all(isinstance(v, (int, float)) for v in values):
                agg[k] = statistics.fmean(values)
                agg[f'{k}_std'] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(agg)
    return out


def pm(row: dict, key: str) -> str:
    return f"{row[key]:.2f} ± {row[f'{key}_std']:.2f}" if row['seeds'] > 1 else f'{row[key]:.2f}'


def write_table(rows: list[dict], path: Path) -> str:
    """The accuracy table (mean +- std over seeds) and PHA's given vs retrieved table."""
    agg = summary(rows)
    tasks = [k.removesuffix('_top1') for k in rows[0] if k.endswith('_top1') and k not in TAIL]
    lines = ['| shots | train images / task | method | trainable | ' + ' | '.join(tasks) + ' | mean top-1 |',
             '|' + '---|' * (len(tasks) + 5)]
    for r in agg:
        cells = [str(r['shots'] or 'all'), f"{r['train_per_task']:.0f}", r['method'], f"{r['trainable']:,.0f}",
                 *[f"{r[f'{t}_top1']:.2f}" for t in tasks], pm(r, 'mean_top1')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    pha = [r for r in agg if 'retrieved_top1' in r]
    if pha:
        lines += ['', '| shots | method | mean top-1, given task | mean top-1, retrieved prototype | '
                  'retrieval accuracy |', '|---|---|---|---|---|']
        lines += [f"| {r['shots'] or 'all'} | {r['method']} | {pm(r, 'mean_top1')} | {pm(r, 'retrieved_top1')} | "
                  f"{pm(r, 'retrieval_all')} |" for r in pha]
    text = '\n'.join(lines) + '\n'
    path.write_text(text)
    return text


def write_csv(rows: list[dict], path: Path) -> None:
    fields = FIELDS + [k for k in rows[0] if k.endswith('_top1') and k not in TAIL] + TAIL
    with path.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], path: Path) -> None:
    agg = summary(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r['method'] for r in agg):
        mine = sorted((r for r in agg if r['method'] == method), key=lambda r: r['train_per_task'])
        ax.errorbar([r['train_per_task'] for r in mine], [r['mean_top1'] for r in mine],
                    yerr=[r['mean_top1_std'] for r in mine], marker='o', capsize=3,
                    label=f"{method} ({mine[0]['trainable']:,.0f} trainable)")
    ax.set_xscale('log')
    ticks = sorted({r['train_per_task'] for r in rows})
    ax.set_xticks(ticks, [f'{t:.0f}' for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel('training images per task (mean over the 4 tasks, log)')
    ax.set_ylabel('mean test top-1 over 4 tasks (%)')
    seeds = max(r['seeds'] for r in agg)
    ax.set_title(f'digits multi-task: accuracy vs training data (mean ± std, {seeds} seeds)')
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
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], help='one run per seed (randomness.seed)')
    parser.add_argument('--methods', nargs='+', choices=list(METHODS), default=list(METHODS))
    parser.add_argument('--out', default='work_dirs/pha_sample_efficiency', help='folder of the table, CSV, plot')
    add_threads_argument(parser)
    args = parser.parse_args()
    if any(s < 0 for s in args.shots) or args.epochs < 1:
        parser.error(f'--shots must be >= 0 (0: all) and --epochs >= 1; got {args.shots} and {args.epochs}')
    apply_threads_argument(parser, args)
    return args


def main() -> None:
    args = parse_args()
    register_all_modules()
    out, suite = Path(args.out), _suite()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with console_log_level('WARNING'):
        for seed in args.seeds:
            for shots in args.shots:
                for method in args.methods:
                    rows.append(run(method, shots, args.epochs, seed, out / 'runs', suite))
                    r = rows[-1]
                    print(f"seed {seed}, shots {shots or 'all'}: {method} mean test top-1 {r['mean_top1']:.2f} "
                          f"({r['train_seconds']:.0f} s)", flush=True)
    print(write_table(rows, out / 'sample_efficiency.md'))
    write_csv(rows, out / 'sample_efficiency.csv')
    plot(rows, out / 'sample_efficiency.png')
    print(f'written: {out / "sample_efficiency.md"}, {out / "sample_efficiency.csv"}, {out / "sample_efficiency.png"}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
