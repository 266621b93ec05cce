"""Train a set of configs and write one results table (markdown + CSV) and an accuracy-vs-parameters plot.

    python tools/run_benchmark_suite.py configs/quickstart --work-dir work_dirs/quickstart
    python tools/run_benchmark_suite.py configs/lora/lora_vit-b16-in21k_cub.py configs/ssf/... --work-dir DIR
    python tools/run_benchmark_suite.py configs/quickstart_dense --work-dir work_dirs/quickstart_dense

Each run selects its best checkpoint on the validation split (TunerCheckpointHook), then that best tuner
file is evaluated once on the test split when the config has a ``test_dataloader``.

Multi-task classification configs (``MultiTaskClassifier``) get a table of every task's top-1 and the trainable
parameters per task as % of the backbone, and a plot. Multi-task dense configs (``MultiTaskDenseModel``) get their
own table (every task's metric and delta_m) and a
delta_m-vs-parameters plot. delta_m is measured against the suite's single-task runs of the same dataset
(configs with ``suite = dict(single_task=True)``) and, for tasks the suite has no single-task run of,
``--single-task-baselines FILE``; a row gets delta_m only when every one of its tasks has a baseline. The
single-task results are written as ``single_task_baselines_<dataset>.json`` for reuse.

The console shows a progress bar, one result line per run and the tables; each run's full mmengine log is in its
work dir (``--verbose`` prints it too). Torch threads: ``--threads``, else ``petl_vision.runtime_threads``' rule.
"""
import argparse
import json
import time
from pathlib import Path

from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from petl_vision.analysis import DenseRow, MultiTaskRow, SuiteRow, add_delta_m, single_task_baselines, \
    write_dense_results, write_multitask_results, write_results
from petl_vision.datasets.config_keys import merge_options
from petl_vision.evaluation.dense import load_single_task_baselines
from petl_vision.runtime_threads import add_threads_argument, apply_threads_argument
from petl_vision.setup_env import console_log_level, register_all_modules
from petl_vision.tuners import load_tuners

DENSE_PREFIX = 'dense/'


def expand(paths: list[str]) -> list[Path]:
    configs = []
    for p in map(Path, paths):
        configs.extend(sorted(p.glob('*.py')) if p.is_dir() else [p])
    if not configs:
        raise FileNotFoundError(f'no config files in {paths}')
    return configs


class ProgressHook(Hook):
    """Advances a rich progress task by one per training iteration of the run."""

    priority = 'VERY_LOW'

    def __init__(self, progress: Progress, task: int, name: str) -> None:
        self.progress, self.task, self.name = progress, task, name

    def before_train(self, runner) -> None:
        self.progress.reset(self.task, total=runner.max_iters, description=self.name, visible=True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.progress.advance(self.task)


def run_one(config: Path, work_dir: Path, options: dict | None, hooks: tuple[Hook, ...] = ()) -> SuiteRow | DenseRow:
    cfg = Config.fromfile(str(config))
    merge_options(cfg, options)  # data_root=DIR img_size=S num_classes=C reach every loader, as tools/train.py
    cfg.work_dir = str(work_dir / config.stem)
    cfg.experiment_name = config.stem
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    model = runner.model
    if cfg.model.type == 'MultiTaskClassifier':
        return multitask_row(config, cfg, runner, seconds)
    best = Path(cfg.work_dir) / 'tuners_best.safetensors'
    if best.exists():
        load_tuners(model.backbone, best, owner=model)  # the best epoch's tuners and (dense) decoders
    counts = model.parameter_counts()
    meta = cfg.get('suite', {})
    dataset = meta.get('dataset', cfg.train_dataloader.dataset.type)
    method = meta.get('method', config.stem)
    if cfg.model.type == 'MultiTaskDenseModel':
        split = 'test' if cfg.get('test_dataloader') else 'val'
        metrics = runner.test() if split == 'test' else runner.val()
        metrics = {k.removeprefix(DENSE_PREFIX): float(v) for k, v in metrics.items() if k.startswith(DENSE_PREFIX)}
        return DenseRow(config=str(config), dataset=dataset, method=method, trainable=counts['trainable'],
                        decoders=counts['head'], metrics=metrics, split=split, train_seconds=seconds,
                        single_task=bool(meta.get('single_task', False)))
    val = json.loads(best.with_suffix('.json').read_text())['accuracy/top1'] if best.exists() else None
    test = runner.test()['accuracy/top1'] if cfg.get('test_dataloader') else None
    return SuiteRow(config=str(config), dataset=dataset, method=method, trainable=counts['trainable'],
                    head=counts['head'], val_top1=val, test_top1=test, train_seconds=seconds)


def multitask_row(config: Path, cfg: Config, runner: Runner, seconds: float) -> MultiTaskRow:
    """Restore the best epoch (by mean validation top-1: every task's file of that epoch) and test it."""
    model = runner.model
    for file, adapter, owner in model.tuner_files('tuners_best.safetensors'):
        path = Path(cfg.work_dir) / file
        if path.exists():
            load_tuners(model.backbone, path, owner=owner, adapter=adapter, replace=adapter is not None)
    split = 'test' if cfg.get('test_dataloader') else 'val'
    metrics = runner.test() if split == 'test' else runner.val()
    counts = model.parameter_counts()['per_task']
    meta = cfg.get('suite', {})
    return MultiTaskRow(config=str(config), dataset=meta.get('dataset', 'multi-task'),
                        method=meta.get('method', config.stem), split=split,
                        top1={t: float(metrics[f'{t}/top1']) for t in model.tasks},
                        adapter_per_task={t: c['adapter'] for t, c in counts.items()},
                        head_per_task={t: c['head'] for t, c in counts.items()},
                        percent_per_task={t: c['percent_of_backbone'] for t, c in counts.items()},
                        train_seconds=seconds)


def dense_baselines(rows: list[DenseRow], path: str | None) -> dict[str, dict[str, float]]:
    """Single-task baselines per dataset: the file's values (for every dataset), replaced by the suite's own
    single-task runs where it has them."""
    measured = single_task_baselines(rows)
    given = load_single_task_baselines(path) if path else {}
    return {d: {**given, **measured.get(d, {})} for d in {r.dataset for r in rows}}


def result_line(row: SuiteRow | DenseRow) -> str:
    """One line per finished run: its accuracy (or dense metrics), trainable parameters and training time."""
    if isinstance(row, MultiTaskRow):
        scores = ', '.join(f'{k} {v:.2f}' for k, v in row.top1.items())
        return f'{row.method}: {row.split} top-1 {scores} (mean {row.mean_top1:.2f}); ' \
               f'{row.mean_percent:.2f}% of the backbone per task; {row.train_seconds:.0f} s'
    if isinstance(row, DenseRow):
        scores = ', '.join(f'{k} {v:.2f}' for k, v in row.metrics.items())
        return f'{row.method}: {row.split} {scores}; {row.trainable:,} trainable; {row.train_seconds:.0f} s'
    scores = ', '.join(f'{split} top-1 {v:.2f}' for split, v in (('val', row.val_top1), ('test', row.test_top1))
                       if v is not None)
    return f'{row.method}: {scores or "no evaluation"}; {row.trainable:,} trainable (no head); ' \
           f'{row.train_seconds:.0f} s'


def run_all(configs: list[Path], work_dir: Path, options: dict | None, show_progress: bool) -> list:
    """Train every config under a progress bar, printing a result line as each finishes."""
    columns = (TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(), TextColumn('it'),
               TimeElapsedColumn(), TimeRemainingColumn())
    rows = []
    with Progress(*columns, transient=True, disable=not show_progress) as progress:
        task = progress.add_task('', total=None, visible=False)
        for i, config in enumerate(configs, 1):
            name = f'[{i}/{len(configs)}] {config.stem}'
            rows.append(run_one(config, work_dir, options, (ProgressHook(progress, task, name),)))
            progress.console.print(f'[{i}/{len(configs)}] {result_line(rows[-1])}', markup=False, highlight=False,
                                   soft_wrap=True)  # one line, however narrow the console
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='config files or folders of configs')
    parser.add_argument('--work-dir', default='work_dirs/suite')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every config')
    parser.add_argument('--single-task-baselines', help='JSON/YAML of single-task results for the dense tasks the '
                        'suite has no single-task run of (e.g. a previous suite\'s file)')
    add_threads_argument(parser)
    parser.add_argument('--verbose', action='store_true', help="print mmengine's full log (always in each work dir)")
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args()
    apply_threads_argument(parser, args)
    return args


def main() -> None:
    args = parse_args()
    register_all_modules()
    work_dir = Path(args.work_dir)
    with console_log_level('INFO' if args.verbose else 'WARNING'):
        rows = run_all(expand(args.configs), work_dir, args.cfg_options, not args.no_progress)
    outputs = []
    classification = [r for r in rows if isinstance(r, SuiteRow)]
    if classification:
        outputs.append(write_results(classification, work_dir))
    multitask = [r for r in rows if isinstance(r, MultiTaskRow)]
    if multitask:
        outputs.append(write_multitask_results(multitask, work_dir))
    dense = [r for r in rows if isinstance(r, DenseRow)]
    if dense:
        dense = add_delta_m(dense, dense_baselines(dense, args.single_task_baselines))
        outputs.append(write_dense_results(dense, work_dir))
    for paths in outputs:
        print(paths['markdown'].read_text())
        print(f'written: {", ".join(str(p) for p in paths.values())}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
