"""Episodic few-shot evaluation.

    python tools/fewshot_eval.py --backbone resnet18 --method frozen prolad --dataset cub --data-root data/fgvc/CUB
    python tools/fewshot_eval.py configs/prolad/prolad_vit-digits-demo_digits-shift.py --out work_dirs/fs/res.json

A CONFIG (an mmengine config file) sets any of the options below by their names (``backbone``, ``method``,
``dataset``, ``data_root``, ``episodes``, ...); options given on the command line win. With ``--out`` the tool
also writes ``<out>.csv`` (one row per method and domain) and ``<out>.png`` (accuracy per domain for each method,
95% CI error bars).

Each method adapts a fresh copy of the backbone on every episode's support set and classifies its queries
(``petl_vision.fewshot``); the table shows mean query accuracy +- 95% confidence interval per dataset (domain),
the JSON (``--out``) holds the same with the per-episode accuracies and seconds per episode.

- ``--backbone``: a timm name (``resnet18``, ``vit_small_patch16_224``, ``swin_tiny_patch4_window7_224``,
  ``vit_digits_demo``) with ``--pretrained timm`` (timm's weights), a file, a URL, ``zoo://name`` or ``none``.
- ``--method``: ``frozen`` (prototype classifier), ``head`` (fine-tuned linear head), ``tsa``, ``prolad``, or a
  core preset (``lora``, ``adapter``, ``ssf``, ...) trained per episode with the prototype loss.
- ``--dataset``: ``digits`` (scikit-learn digits), ``digits-shift`` (the demo's rotated target digits),
  ``cifar100``, ``cub``/``nabirds``/``flowers``/``dogs``/``cars`` (VPT's FGVC layout), ``vtab:<task>`` or
  ``folder:<name>`` (any folder in VPT's json layout: ``{train,val,test}.json`` = ``{image path: class id}``), the
  file datasets under ``--data-root`` (one root per dataset, in order).
"""
import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from mmengine.registry import DefaultScope
from rich.console import Console
from rich.table import Table

from petl_vision import setup_env
from petl_vision.runtime_threads import add_threads_argument
from petl_vision.datasets.fgvc import FGVCDataset
from petl_vision.datasets.episodes import EpisodeSampler, FixedProtocol, MetaDatasetProtocol
from petl_vision.fewshot import FewShotDomain, FewShotEvaluator
from petl_vision.fewshot.methods import METHODS, build_fewshot_method
from petl_vision.models.backbone_builder import build_timm_backbone, pretrained_mean_std
from petl_vision.registry import DATASETS
from petl_vision.tuners import list_presets

FGVC = {'cub': 'CUB200', 'nabirds': 'NABirds', 'flowers': 'OxfordFlowers', 'dogs': 'StanfordDogs',
        'cars': 'StanfordCars'}
ARRAY_DATASETS = {'digits': dict(type='SklearnDigits'), 'digits-shift': dict(type='DigitsShiftTarget')}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Episodic few-shot evaluation (mean +- 95% CI per domain)')
    parser.add_argument('config', nargs='?', help='mmengine config file whose keys set the options below')
    parser.add_argument('--backbone')
    parser.add_argument('--pretrained', default='timm', help="'timm', 'none', a path, a URL or zoo://name")
    parser.add_argument('--method', nargs='+', default=['frozen', 'prolad'],
                        help=f'{", ".join(METHODS)} or a core preset ({", ".join(list_presets())})')
    parser.add_argument('--dataset', nargs='+')
    parser.add_argument('--data-root', nargs='*', default=[], help='one per file dataset, in --dataset order')
    parser.add_argument('--split', default='test')
    parser.add_argument('--protocol', choices=('fixed', 'meta-dataset'), default='fixed')
    parser.add_argument('--n-way', type=int, default=5)
    parser.add_argument('--k-shot', type=int, default=5)
    parser.add_argument('--n-query', type=int, default=15)
    parser.add_argument('--episodes', type=int, default=600)
    parser.add_argument('--max-iter', type=int, help='adaptation steps per stage (default: each method\'s own)')
    parser.add_argument('--img-size', type=int, help="input side; default: the backbone's pretrained size")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', type=Path, help='JSON file of the results')
    parser.add_argument('--no-progress', action='store_true')
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.config:
        from mmengine.config import Config

        cfg = Config.fromfile(args.config).to_dict()
        unknown = sorted(set(cfg) - set(vars(args)))
        if unknown:
            raise SystemExit(f'{args.config}: unknown keys {unknown}; known: {sorted(set(vars(args)) - {"config"})}')
        for key, value in cfg.items():  # the config fills what the command line left at its default
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, Path(value) if key == 'out' else value)
    for key in ('backbone', 'dataset'):
        if not getattr(args, key):
            parser.error(f'--{key} is required (on the command line or in the config)')
    return args


def build_backbone(args: argparse.Namespace) -> torch.nn.Module:
    pretrained = None if args.pretrained == 'none' else args.pretrained
    return build_timm_backbone(args.backbone, pretrained=pretrained, num_classes=0).to(args.device).eval()


def dataset_config(name: str, root: str | None, split: str, size: int) -> dict:
    if name in ARRAY_DATASETS:
        return dict(ARRAY_DATASETS[name], split=split, pipeline=[dict(type='Resize', size=(size, size))])
    pipeline = [dict(type='LoadImage'), dict(type='Resize', size=(size, size))]
    if root is None:
        raise SystemExit(f'dataset {name!r} reads files: pass its --data-root')
    if name == 'cifar100':
        return dict(type='CIFAR100', data_root=root, split=split, pipeline=pipeline[1:])
    if name in FGVC:
        return dict(type=FGVC[name], data_root=root, split=split, pipeline=pipeline)
    if name.startswith('folder:'):  # any domain in VPT's json layout, e.g. a converted Meta-Dataset source
        return dict(type=FGVCDataset, data_root=root, split=split, pipeline=pipeline)
    if name.startswith('vtab:'):
        return dict(type='VTAB1k', data_root=root, task=name[5:], split=split, pipeline=pipeline)
    raise SystemExit(f'unknown dataset {name!r}; use digits, digits-shift, cifar100, {", ".join(FGVC)}, '
                     'vtab:<task> or folder:<name>')


def build_domains(args: argparse.Namespace, backbone: torch.nn.Module) -> list[FewShotDomain]:
    size = args.img_size or backbone.pretrained_cfg.get('input_size', (3, 224, 224))[-1]
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in pretrained_mean_std(backbone))
    protocol = MetaDatasetProtocol() if args.protocol == 'meta-dataset' else \
        FixedProtocol(args.n_way, args.k_shot, args.n_query)
    roots = iter(args.data_root)
    domains = []
    for name in args.dataset:
        root = None if name in ARRAY_DATASETS else next(roots, None)
        dataset = DATASETS.build(dataset_config(name, root, args.split, size))
        labels = np.array([dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))], dtype=np.int64)

        def fetch(idx: np.ndarray, dataset=dataset) -> torch.Tensor:
            images = torch.stack([dataset[int(i)]['img'] for i in idx]).float()  # (B, 3, S, S) in 0..255
            return (images - mean) / std

        domains.append(FewShotDomain(name, EpisodeSampler(labels, protocol, seed=args.seed), fetch))
    return domains


def build_method(method: str, backbone: torch.nn.Module, max_iter: int | None = None):
    try:
        return build_fewshot_method(method, backbone, max_iter)
    except ValueError as err:
        raise SystemExit(str(err).replace('unknown few-shot method', 'unknown method')) from None


def evaluate(args: argparse.Namespace) -> dict:
    setup_env.register_all_modules()
    with DefaultScope.overwrite_default_scope('petl_vision'):  # whatever scope an earlier Runner left current
        domains = build_domains(args, build_backbone(args))
    results = {}
    for method in args.method:
        backbone = build_backbone(args)  # a fresh backbone per method: each attaches its own tuners
        adapt = build_method(method, backbone, args.max_iter)
        start = time.perf_counter()
        evaluator = FewShotEvaluator(adapt, backbone, num_episodes=args.episodes, seed=args.seed, device=args.device,
                                     progress=not args.no_progress)
        res = evaluator.evaluate(domains)
        seconds = (time.perf_counter() - start) / (args.episodes * len(domains))
        results[method] = {'domains': {name: {**row, 'accuracies': res.domains[name].accuracies.tolist()}
                                       for name, row in res.table().items()},
                           'average': res.average, 'seconds_per_episode': seconds}
    return results


def print_table(results: dict, datasets: list[str]) -> None:
    table = Table(title='few-shot accuracy (%), mean +- 95% CI')
    for column in ('method', *datasets, 'average', 's/episode'):
        table.add_column(column)
    for method, r in results.items():
        cells = [f"{r['domains'][d]['accuracy']:.2f} +- {r['domains'][d]['ci95']:.2f}" for d in datasets]
        table.add_row(method, *cells, f"{r['average']:.2f}", f"{r['seconds_per_episode']:.2f}")
    Console().print(table)


def write_csv(results: dict, path: Path) -> None:
    with path.open('w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'domain', 'accuracy', 'ci95', 'episodes', 'seconds_per_episode'])
        for method, r in results.items():
            for domain, row in r['domains'].items():
                writer.writerow([method, domain, f"{row['accuracy']:.4f}", f"{row['ci95']:.4f}",
                                 len(row['accuracies']), f"{r['seconds_per_episode']:.4f}"])


def plot_domains(results: dict, datasets: list[str], path: Path) -> None:
    """Grouped bars: one group per domain, one bar per method, 95% CI as error bars."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    methods = list(results)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(datasets) * max(1, len(methods) / 2)), 4))
    for i, method in enumerate(methods):
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(datasets))]
        acc = [results[method]['domains'][d]['accuracy'] for d in datasets]
        ci = [results[method]['domains'][d]['ci95'] for d in datasets]
        ax.bar(xs, acc, width, yerr=ci, capsize=3, label=method)
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel('query accuracy (%)')
    ax.set_title('few-shot accuracy per domain (mean, 95% CI)')
    ax.legend(fontsize=8)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    setup_env.set_torch_threads(args.threads)
    results = evaluate(args)
    print_table(results, args.dataset)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.out.write_text(json.dumps({'config': config, 'results': results}, indent=1))
        write_csv(results, args.out.with_suffix('.csv'))
        plot_domains(results, args.dataset, args.out.with_suffix('.png'))
    return results


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
