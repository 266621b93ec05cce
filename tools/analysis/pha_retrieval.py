"""PHA's retrieval report: how often the retrieved prototype is the sample's own task, and what it costs in accuracy.

    python tools/analysis/pha_retrieval.py --out work_dirs/pha_retrieval
    python tools/analysis/pha_retrieval.py --config configs/pha/pha_digits_multitask.py --features prepass 2 --out DIR

For every ``--features`` source of the retriever (``prepass``: the frozen backbone's tokens in a second forward; an
int k: block k's tokens in the same pass, PHA then only on the blocks after k), the PHA config is trained through
the mmengine Runner (``--epochs`` epochs; model selection on the mean validation top-1 with retrieved prototypes),
then tested twice: with the given task's prototype and with the retrieved one. Written to ``--out``:
``retrieval.md`` (per task: top-1 given, top-1 retrieved, retrieval accuracy; and which task each task's test
images retrieve) and ``retrieval.csv``.
"""
import argparse
import csv
import importlib.util
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from petl_vision.runtime_threads import add_threads_argument, apply_threads_argument  # noqa: E402
from petl_vision.setup_env import console_log_level, register_all_modules  # noqa: E402

FIELDS = ['features', 'task', 'top1_given', 'top1_retrieved', 'retrieval']


def _suite():
    """tools/run_benchmark_suite.py as a module (its best-epoch restore and test of a multi-task run)."""
    spec = importlib.util.spec_from_file_location('_suite', ROOT / 'tools' / 'run_benchmark_suite.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def features_arg(value: str) -> str | int:
    return value if value == 'prepass' else int(value)


def run(config: Path, features: str | int, epochs: int, work_dir: Path) -> tuple[list[dict], dict]:
    """Train with retrieval from ``features``; per-task rows and, per task, the counts of the tasks it retrieves."""
    cfg = Config.fromfile(str(config))
    cfg.model.retriever_features, cfg.model.task_source = features, 'retrieved'
    cfg.train_cfg.max_epochs = epochs
    cfg.work_dir = str(work_dir / f'features_{features}')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)  # the best tuners are saved apart
    runner = Runner.from_cfg(cfg)
    runner.train()
    retrieved = _suite().multitask_row(config, cfg, runner, 0.0).top1  # the best epoch, tested with retrieval
    runner.model.task_source = 'given'
    metrics = runner.test()
    rows = [{'features': features, 'task': t, 'top1_given': round(metrics[f'{t}/top1'], 2),
             'top1_retrieved': round(retrieved[t], 2), 'retrieval': round(metrics[f'retrieval/{t}'], 2)}
            for t in runner.model.tasks]
    rows.append({'features': features, 'task': 'mean / all', 'top1_given': round(metrics['mean/top1'], 2),
                 'top1_retrieved': round(sum(retrieved.values()) / len(retrieved), 2),
                 'retrieval': round(metrics['retrieval/all'], 2)})
    return rows, confusion(runner)


@torch.no_grad()
def confusion(runner: Runner) -> dict[str, Counter]:
    """Per task, how many of its test images retrieve each task."""
    model, out = runner.model.eval(), {}
    for batch in runner.test_dataloader:
        data = model.data_preprocessor(batch, False)
        for p in model(data['inputs'], data['data_samples'], mode='predict', task=batch['task']):
            out.setdefault(p['task'], Counter())[p['retrieved_task']] += 1
    return out


def write_table(results: list[tuple[list[dict], dict]], config: Path, epochs: int, path: Path) -> str:
    lines = [f'`{config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}`, {epochs} epochs, test split.',
             '', '| retriever features | task | top-1, given task | top-1, retrieved prototype | retrieval accuracy |',
             '|---|---|---|---|---|']
    for rows, _ in results:
        lines += [f"| {r['features']} | {r['task']} | {r['top1_given']:.2f} | {r['top1_retrieved']:.2f} | "
                  f"{r['retrieval']:.2f} |" for r in rows]
    for rows, counts in results:
        tasks = list(counts)
        lines += ['', f"Retrieved task of each task's test images (retriever features: {rows[0]['features']}):", '',
                  '| task \\ retrieved | ' + ' | '.join(tasks) + ' |', '|' + '---|' * (len(tasks) + 1)]
        lines += [f'| {t} | ' + ' | '.join(str(counts[t][r]) for r in tasks) + ' |' for t in tasks]
    text = '\n'.join(lines) + '\n'
    path.write_text(text)
    return text


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(ROOT / 'configs' / 'pha' / 'pha_digits_task-domains.py'),
                        help='a PHAClassifier config with PHARetrievalAccuracy in its test evaluator')
    parser.add_argument('--features', type=features_arg, nargs='+', default=['prepass', 2],
                        help="retriever features: 'prepass' or a block index (one run each)")
    parser.add_argument('--epochs', type=int, default=10, help='epochs of every run')
    parser.add_argument('--out', default='work_dirs/pha_retrieval', help='folder of the table and CSV')
    add_threads_argument(parser)
    args = parser.parse_args()
    if args.epochs < 1 or not Path(args.config).is_file():
        parser.error(f'--epochs must be >= 1 and --config an existing file; got {args.epochs} and {args.config}')
    apply_threads_argument(parser, args)
    return args


def main() -> None:
    args = parse_args()
    register_all_modules()
    out, config = Path(args.out), Path(args.config).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with console_log_level('WARNING'):
        results = [run(config, f, args.epochs, out / 'runs') for f in args.features]
    print(write_table(results, config, args.epochs, out / 'retrieval.md'))
    with (out / 'retrieval.csv').open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(r for rows, _ in results for r in rows)
    print(f'written: {out / "retrieval.md"}, {out / "retrieval.csv"}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
