"""PHA's few-shot transfer on the digits tasks: a held-out task learned from k shots by its prototype and head only.

    python tools/analysis/pha_fewshot_transfer.py --out work_dirs/pha_fewshot_transfer
    python tools/analysis/pha_fewshot_transfer.py --holdout loops --shots 1 5 10 --seeds 0 1 2 --out DIR

1. PHA (``configs/pha/pha_digits_multitask.py``) is trained through the mmengine Runner on the digits tasks but
   ``--holdout`` (``--epochs`` epochs, whole train split, best epoch by mean validation top-1 restored).
2. For every ``--shots`` k (``DigitsMultiTask(shots=k)``: k images per class in each of the four domains) and every
   ``--seeds`` seed, the held-out task is learned from those images alone, each method from the same start, with
   the same full-batch Adam loop (``--steps`` steps, ``--lr``, no weight decay):

   - ``PHA, nearest prototype``: ``PHAClassifier.add_task`` copies the learned prototype nearest (by the retriever)
     to the mean embedding of the k-shot images; only that prototype and the new head train (PHA's loss);
   - ``PHA, mean prototype`` / ``PHA, random prototype``: the same, started from the mean of the learned prototypes
     or from N(0, 1) (ablations of the initialisation);
   - ``new LoRA`` / ``new Adapter`` / ``head only``: a new adapter (the ``lora`` / ``adapter`` preset) and head, or
     the head alone, on the frozen backbone, from scratch.

   Each is tested on the held-out task's 200 test images. Written to ``--out``: ``fewshot_transfer.md`` (mean +- std
   over the seeds), ``fewshot_transfer.csv`` (one row per run) and ``fewshot_transfer.png`` (test top-1 against
   shots, trainable parameters in the legend).
"""
import argparse
import copy
import csv
import importlib.util
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from petl_vision.datasets.digits_multitask import TASKS, DigitsMultiTask  # noqa: E402
from petl_vision.models import MultiTaskClassifier, PHAClassifier  # noqa: E402
from petl_vision.runtime_threads import add_threads_argument, apply_threads_argument  # noqa: E402
from petl_vision.setup_env import console_log_level, register_all_modules  # noqa: E402

CONFIG = ROOT / 'configs' / 'pha' / 'pha_digits_multitask.py'
METHODS = ['PHA, nearest prototype', 'PHA, mean prototype', 'PHA, random prototype', 'new LoRA', 'new Adapter',
           'head only']
PLANS = {'new LoRA': 'lora', 'new Adapter': 'adapter', 'head only': 'linear'}
FIELDS = ['method', 'shots', 'seed', 'train_images', 'test_top1', 'trainable', 'init_from']


def _suite():
    """tools/run_benchmark_suite.py as a module (its best-epoch restore and test of a multi-task run)."""
    spec = importlib.util.spec_from_file_location('_suite', ROOT / 'tools' / 'run_benchmark_suite.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_config(holdout: str, epochs: int, work_dir: Path) -> Config:
    """PHA's digits config without the held-out task (model heads and every split)."""
    cfg = Config.fromfile(str(CONFIG))
    del cfg.model.tasks[holdout]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        del cfg[loader].dataset.datasets[holdout]
    cfg.train_cfg.max_epochs = epochs
    cfg.work_dir = str(work_dir / 'source')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)  # the best tuners are saved apart
    return cfg


def train_source(holdout: str, epochs: int, work_dir: Path) -> tuple[PHAClassifier, dict[str, float]]:
    """The multi-task PHA model of the other tasks (best epoch) and its test top-1 per task."""
    cfg = source_config(holdout, epochs, work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    row = _suite().multitask_row(CONFIG, cfg, runner, 0.0)
    return runner.model.eval(), row.top1


def task_tensors(model, task: str, split: str, shots: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A task's images (n, 3, 32, 32), normalised as the model's preprocessor does, and labels (n,)."""
    data = DigitsMultiTask(task=task, domain=list(Config.fromfile(str(CONFIG)).domains), split=split, shots=shots,
                           pipeline=[dict(type='PackInputs')])
    items = [data[i] for i in range(len(data))]
    x = torch.stack([torch.as_tensor(it['inputs']) for it in items]).float()
    pre = model.data_preprocessor
    return (x - pre.mean) / pre.std, torch.tensor([it['data_samples'] for it in items])


def transfer(method: str, source: PHAClassifier, task: str, train: tuple, steps: int, lr: float) -> tuple:
    """The method's model for ``task`` trained on ``train``; (model, trainable count, prototype it copies)."""
    classes, init_from = len(TASKS[task]), ''
    if method.startswith('PHA'):
        model = copy.deepcopy(source)
        init_from = model.add_task(task, classes, train[0], init=method.split(', ')[1].split()[0]) or ''
        params = model.transfer_parameters(task)
        trainable = model.source.prototypes.embedding_dim + sum(p.numel() for p in model.heads[task].parameters())
    else:
        model = MultiTaskClassifier(backbone=dict(model='vit_digits_demo', pretrained=True), tasks={task: classes},
                                    plan=PLANS[method], label_smoothing=0.1)
        if method == 'head only':
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        trainable = sum(p.numel() for p in params)
    optimizer = torch.optim.Adam(params, lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        losses = model(train[0], train[1], mode='loss', task=task)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        optimizer.step()
    return model.eval(), trainable, init_from


@torch.no_grad()
def top1(model, task: str, test: tuple) -> float:
    logits = model(test[0], mode='tensor', task=task)[task]
    return 100.0 * (logits.argmax(-1) == test[1]).float().mean().item()


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for key in dict.fromkeys((r['shots'], r['method']) for r in rows):
        mine = [r for r in rows if (r['shots'], r['method']) == key]
        accs = [r['test_top1'] for r in mine]
        out.append({**mine[0], 'test_top1': statistics.fmean(accs), 'std': statistics.stdev(accs) if len(accs) > 1
                    else 0.0, 'seeds': len(mine), 'init_from': ', '.join(sorted({r['init_from'] for r in mine}))})
    return out


def write_table(rows: list[dict], holdout: str, source_top1: dict, path: Path) -> str:
    agg = summary(rows)
    lines = [f'Held-out task: {holdout}; PHA trained on {", ".join(source_top1)} (test top-1 '
             + ', '.join(f'{t} {v:.2f}' for t, v in source_top1.items()) + ').', '',
             '| shots | train images | method | trainable | prototype copied | test top-1 |', '|' + '---|' * 6]
    for r in agg:
        acc = f"{r['test_top1']:.2f} ± {r['std']:.2f}" if r['seeds'] > 1 else f"{r['test_top1']:.2f}"
        lines.append(f"| {r['shots']} | {r['train_images']} | {r['method']} | {r['trainable']:,} | "
                     f"{r['init_from'] or '-'} | {acc} |")
    text = '\n'.join(lines) + '\n'
    path.write_text(text)
    return text


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], holdout: str, path: Path) -> None:
    agg = summary(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r['method'] for r in agg):
        mine = sorted((r for r in agg if r['method'] == method), key=lambda r: r['shots'])
        ax.errorbar([r['shots'] for r in mine], [r['test_top1'] for r in mine], yerr=[r['std'] for r in mine],
                    marker='o', capsize=3, label=f"{method} ({mine[0]['trainable']:,} trainable)")
    ax.set_xscale('log')
    ticks = sorted({r['shots'] for r in agg})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel('shots (images per class in each of the 4 domains, log)')
    ax.set_ylabel(f'{holdout} test top-1 (%)')
    ax.set_title(f'few-shot transfer to the held-out task {holdout!r} (mean ± std over seeds)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--holdout', default='loops', choices=list(TASKS), help='the task left out and transferred to')
    parser.add_argument('--shots', type=int, nargs='+', default=[1, 5, 10], help='images per class per domain')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='one transfer run per seed')
    parser.add_argument('--epochs', type=int, default=10, help='epochs of the multi-task PHA run on the other tasks')
    parser.add_argument('--steps', type=int, default=100, help='full-batch steps of every transfer run')
    parser.add_argument('--lr', type=float, default=3e-3, help='Adam learning rate of every transfer run')
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=METHODS)
    parser.add_argument('--out', default='work_dirs/pha_fewshot_transfer', help='folder of the table, CSV, plot')
    add_threads_argument(parser)
    args = parser.parse_args()
    if any(s < 1 for s in args.shots) or args.epochs < 1 or args.steps < 1 or args.lr <= 0:
        parser.error(f'--shots must be >= 1, --epochs and --steps >= 1 and --lr > 0; got {args.shots}, '
                     f'{args.epochs}, {args.steps} and {args.lr}')
    apply_threads_argument(parser, args)
    return args


def main() -> None:
    args = parse_args()
    register_all_modules()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with console_log_level('WARNING'):
        source, source_top1 = train_source(args.holdout, args.epochs, out / 'runs')
        test = task_tensors(source, args.holdout, 'test')
        for shots in args.shots:
            train = task_tensors(source, args.holdout, 'train', shots)
            for seed in args.seeds:
                for method in args.methods:
                    torch.manual_seed(seed)
                    model, trainable, init_from = transfer(method, source, args.holdout, train, args.steps, args.lr)
                    rows.append({'method': method, 'shots': shots, 'seed': seed, 'train_images': len(train[1]),
                                 'test_top1': round(top1(model, args.holdout, test), 4), 'trainable': trainable,
                                 'init_from': init_from})
                    print(f"{shots} shots, seed {seed}: {method} {rows[-1]['test_top1']:.2f}", flush=True)
    print(write_table(rows, args.holdout, source_top1, out / 'fewshot_transfer.md'))
    write_csv(rows, out / 'fewshot_transfer.csv')
    plot(rows, args.holdout, out / 'fewshot_transfer.png')
    print(f'written: {out / "fewshot_transfer.md"}, {out / "fewshot_transfer.csv"}, {out / "fewshot_transfer.png"}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
