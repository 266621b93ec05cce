"""A domain-incremental continual run on the digits domains with the shipped digits ViT.

    python tools/continual.py --out work_dirs/continual                       # 4 domains, a few minutes on 1 CPU
    python tools/continual.py --domains upright inverted blurred --epochs 20 --out DIR

One LoRA adapter (attention qkv + head) per domain, trained in isolation on the frozen backbone; after each stage
every seen domain is evaluated with the domain id given (oracle), with an L2R router trained on a small replay
memory (``--memory`` images per domain), with Arrow's zero-shot routing and with uniform mixing
(``petl_vision.continual.domain_run``). Writes into ``--out``: ``results.json`` (config, accuracy matrices,
metrics, routing accuracy, timings), ``accuracy_<method>.csv``, ``accuracy_matrices.png`` and ``report.md``.
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

from petl_vision import setup_env
from petl_vision.runtime_threads import add_threads_argument
from petl_vision.continual.domain_run import DEFAULT_DOMAINS, METHODS, plot_matrices, run_domain_sequence
from petl_vision.datasets.digits_multitask import DOMAINS

METRICS = ('final_average_accuracy', 'average_incremental_accuracy', 'max_forgetting', 'backward_transfer')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Domain-incremental digits run: per-domain LoRA adapters composed '
                                                 'by oracle task id, L2R, Arrow and uniform mixing')
    parser.add_argument('--domains', nargs='+', default=list(DEFAULT_DOMAINS), choices=DOMAINS,
                        help='the domain sequence, in order')
    parser.add_argument('--epochs', type=int, default=50, help='training epochs of each domain adapter')
    parser.add_argument('--rank', type=int, default=8, help='LoRA rank on the attention qkv (the head LoRA: 10)')
    parser.add_argument('--lr', type=float, default=5e-3, help='AdamW learning rate of the adapters')
    parser.add_argument('--memory', type=int, default=20,
                        help='replay memory: training images kept per domain for the L2R router')
    parser.add_argument('--router-epochs', type=int, default=100, help="epochs of the router's training")
    parser.add_argument('--top-k', type=int, default=4, help="Arrow: experts mixed per token (the paper's 4)")
    parser.add_argument('--temperature', type=float, default=1.0, help="Arrow: softmax temperature")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--limit', type=int, help='use only the first N train and test images of each domain '
                                                  '(quick checks)')
    add_threads_argument(parser)
    parser.add_argument('--out', type=Path, required=True, help='folder for the json, csv, heat map and report')
    args = parser.parse_args(argv)
    if min(args.epochs, args.rank, args.memory, args.router_epochs, args.top_k) < 1 or args.temperature <= 0:
        parser.error('--epochs, --rank, --memory, --router-epochs and --top-k must be >= 1 and --temperature > 0')
    return args


def _pct(v: float) -> str:
    return '' if np.isnan(v) else f'{100 * v:.1f}'


def report(result: dict) -> str:
    """The markdown report: metrics per method, the routing accuracy per stage and each accuracy matrix (%)."""
    lines = ['| method | ' + ' | '.join(METRICS) + ' |', '|---|' + '---|' * len(METRICS)]
    for m in METHODS:
        lines.append(f'| {m} | ' + ' | '.join(_pct(result['metrics'][m][k]) for k in METRICS) + ' |')
    stages = range(1, len(result['domains']) + 1)
    lines += ['', '| routing accuracy (%) | ' + ' | '.join(f'stage {s}' for s in stages) + ' |',
              '|---|' + '---|' * len(stages)]
    for m, values in result['routing_accuracy'].items():
        lines.append(f'| {m} | ' + ' | '.join(_pct(v) for v in values) + ' |')
    for m in METHODS:
        lines += ['', f'{m}: accuracy (%) on domain j (columns) after stage i (rows)', '',
                  '| after | ' + ' | '.join(result['domains']) + ' |', '|---|' + '---|' * len(result['domains'])]
        for name, row in zip(result['domains'], result['matrices'][m]):
            lines.append(f'| {name} | ' + ' | '.join(_pct(v) for v in row) + ' |')
    return '\n'.join(lines) + '\n'


def _no_nan(value):
    """NaN (the accuracy matrices above the diagonal) -> None, so the json is strict."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return None if isinstance(value, float) and np.isnan(value) else value


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / 'results.json').write_text(json.dumps(_no_nan(result), indent=1, allow_nan=False))
    for m in METHODS:
        with open(out / f'accuracy_{m}.csv', 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['after_stage', *result['domains']])
            for name, row in zip(result['domains'], result['matrices'][m]):
                writer.writerow([name, *('' if np.isnan(v) else f'{v:.4f}' for v in row)])
    plot_matrices(result, str(out / 'accuracy_matrices.png'))
    (out / 'report.md').write_text(report(result))


def run(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run the sequence, write the outputs; returns the result (matrices with NaN above the
    diagonal; ``results.json`` has null there)."""
    args = parse_args(argv)
    threads = setup_env.set_torch_threads(args.threads)
    result = run_domain_sequence(args.domains, rank=args.rank, epochs=args.epochs, lr=args.lr, memory=args.memory,
                                 router_epochs=args.router_epochs, top_k=args.top_k, temperature=args.temperature,
                                 seed=args.seed, limit=args.limit)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {'config': {**config, 'threads': threads}, **result}
    write_outputs(result, args.out)
    print(report(result).split('\n\n')[0])
    print(f"{result['seconds']['total']:.1f} s on {threads} thread(s); written to {args.out}")
    return result


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
