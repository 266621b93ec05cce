"""Leave-one-domain-out adapter mixing on the digits domains (AdapterSoup, TIES, DARE; Nguyen & Le 2024's signs).

    python tools/analysis/adapter_library.py --out results/mixing [--domains upright rotated_30 ...] \\
        [--epochs 10] [--rank 4] [--k 3] [--threads 1]

On the shipped ``vit_digits_demo`` backbone (frozen) with one shared linear head, trained once on the upright
pretraining images (:func:`petl_vision.demo.source_arrays`) and frozen, so every adapter and every mixture is read
by the same classifier and only the LoRA updates mix. Then:

1. one LoRA adapter per domain (``DigitsMultiTask(task='digit', domain=D, split='train')``, plain AdamW loop), saved
   as an :class:`~petl_vision.composition.library.AdapterLibrary` in ``OUT/library`` (the head: ``OUT/head.pt``);
2. for each held-out domain D, on D's ``test`` split: every other adapter alone, the uniform AdapterSoup of all
   others, the soup of the ``--k`` others most similar (task-vector cosine) to a *probe* adapter trained on
   ``--probe-shots`` images per class of D (the probe alone is a row too); AdapterSoup's selection by domain
   embedding (mean frozen CLS feature, stored in the library index; D's from the same few images, labels unused):
   the soup of the ``--k`` most similar domains (``emb_topk``) and of D's k-means cluster among ``--clusters``
   (``emb_cluster``); the greedy mix in that order while the mixture's k-way sign difference stays <=
   ``--greedy-threshold`` (``greedy_sign``) or while the accuracy on the probe's labelled images improves
   (``greedy_val``); TIES and DARE of all others, the frozen backbone, D's own adapter (the upper bound); TIES also
   at each of ``--densities`` (the pruning curve);
3. the pairwise fraction of sign difference of the adapters (dense, and after magnitude-pruning every task vector
   to ``--sign-density``) and their cosine, against the accuracy of every pair's 50/50 mixture on the domains that
   are neither's (and its gain over the two adapters alone), with Pearson and Spearman correlations.

Every adapter starts from the same LoRA initialisation (``--init shared``) unless ``--init independent``; TIES and
DARE use the disjoint mean times ``--merge-scale`` (lambda).

Writes to ``--out``: ``results.csv`` (one row per held-out domain and method), ``results.md`` (the table and the
correlations), ``pairs.csv``, ``summary.json``, ``sign_difference.png`` (heat map), ``sign_vs_accuracy.png``
(scatter) and ``pruning.png`` (TIES accuracy against density). With ``--seeds`` (more than one), each seed's study
in ``OUT/seed_<s>/`` and, in ``OUT``, the table as mean +- std over seeds, the correlations per seed and of the
pooled pairs, and the plots over all seeds (mean heat map, pooled scatter, mean pruning curve).
"""
import argparse
import csv
import json
import math
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import petl_vision as pv  # noqa: E402
from petl_vision.composition import (adapter_soup, combine_adapters, embed_domain, greedy_mix,  # noqa: E402
                                     select_adapters, select_by_similarity, sign_difference, task_vector_similarity)
from petl_vision.composition.library import AdapterLibrary  # noqa: E402
from petl_vision.datasets.digits_multitask import DOMAINS, DigitsMultiTask  # noqa: E402
from petl_vision.runtime_threads import add_threads_argument, set_torch_threads  # noqa: E402
from petl_vision.tuners.routing import BASE  # noqa: E402

BACKBONE = 'vit_digits_demo'
MIXES = ('soup_all', 'soup_topk', 'emb_topk', 'emb_cluster', 'greedy_sign', 'greedy_val', 'ties', 'dare')
MEASURES = ('sign_difference', 'sign_difference_pruned', 'cosine')  # of a pair, correlated with its mixture
COLUMNS = ('frozen', 'single_mean', 'single_best', 'probe', *MIXES, 'own')
BATCH = 64


# data and model -----------------------------------------------------------------------------------------------------
def to_input(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> float (N, 3, 32, 32), normalised as the backbone was pretrained (mean = std = 0.5)."""
    x = torch.as_tensor(images).float() / 255.0
    return (x - 0.5) / 0.5


def domain_split(domain: str, split: str, shots: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (N, 3, 32, 32) and digit labels (N,) of one domain's split."""
    ds = DigitsMultiTask(task='digit', domain=domain, split=split, shots=shots, seed=seed)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    return to_input(torch.stack([d['img'] for d in infos])), torch.tensor([d['gt_label'] for d in infos])


def build_backbone() -> nn.Module:
    model = __import__('timm').create_model(BACKBONE, pretrained=True, num_classes=0).eval()
    model.requires_grad_(False)
    return model


def train_head(backbone: nn.Module, steps: int = 300) -> nn.Linear:
    """The shared linear head: trained on frozen features of the upright pretraining images, then frozen."""
    from petl_vision.demo import source_arrays

    images, labels = source_arrays()
    with torch.no_grad(), pv.tuner_context(adapter=[BASE] * len(images)):
        feats = backbone(to_input(images))  # (N, C)
    head = nn.Linear(feats.shape[1], 10)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-4)
    target = torch.as_tensor(labels)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(feats), target).backward()
        opt.step()
    return head.requires_grad_(False).eval()


@torch.no_grad()
def accuracy(backbone: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor, adapter: str | None) -> float:
    """Top-1 accuracy with ``adapter`` active (``None``: the frozen backbone)."""
    correct = 0
    for i in range(0, len(x), BATCH):
        xb = x[i:i + BATCH]
        if adapter is None:
            with pv.tuner_context(adapter=[BASE] * len(xb)):
                logits = head(backbone(xb))
        else:
            pv.set_adapter(backbone, adapter)
            logits = head(backbone(xb))
        correct += int((logits.argmax(1) == y[i:i + BATCH]).sum())
    return correct / len(x)


def train_adapter(backbone: nn.Module, head: nn.Module, name: str, data: tuple[torch.Tensor, torch.Tensor],
                  args: argparse.Namespace) -> None:
    """Add LoRA adapter ``name`` and train it (AdamW, cross-entropy through the frozen head, no augmentation).

    ``args.init == 'shared'``: every adapter starts from the same LoRA initialisation (the same random ``A``,
    ``B = 0``), the common starting point weight averaging assumes; ``'independent'``: a fresh draw per adapter.
    """
    draw = args.seed if args.init == 'shared' else args.seed + 1 + zlib.crc32(name.encode())
    torch.manual_seed(draw)
    pv.add_adapter(backbone, name, [{'type': 'LoRA', 'rank': args.rank}])
    pv.set_adapter(backbone, name)
    params = list(pv.tuners.adapter_parameters(backbone, name))
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    x, y = data
    gen = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(args.batch_size):
            opt.zero_grad()
            F.cross_entropy(head(backbone(x[idx])), y[idx]).backward()
            opt.step()
    for p in params:
        p.requires_grad_(False)


# the study --------------------------------------------------------------------------------------------------------
def build_library(backbone: nn.Module, head: nn.Module, domains: list[str], tests: dict, args) -> AdapterLibrary:
    library = AdapterLibrary(args.out / 'library')
    for d in progress(domains, 'training adapters'):
        train_adapter(backbone, head, d, domain_split(d, 'train', args.train_shots, args.seed), args)
        acc = accuracy(backbone, head, *tests[d], d)
        library.add_model(backbone, d, d, task='digit', dataset=f'DigitsMultiTask:{d}', metrics={'test_acc': acc},
                          overwrite=True)
        embed_domain(library, backbone, d, domain_split(d, 'train', args.train_shots, args.seed)[0], args.pool)
    torch.save(head.state_dict(), args.out / 'head.pt')
    return library


def mixed(backbone: nn.Module, head: nn.Module, name: str, test: tuple, members: list[str]) -> dict:
    """Accuracy of the (already added) adapter ``name`` and the k-way sign difference of what it mixes; then
    take it off the model."""
    acc = accuracy(backbone, head, *test, name)
    pv.delete_adapter(backbone, name)
    kway = sign_difference(backbone, members).kway if len(members) > 1 else 0.0
    return {'accuracy': acc, 'adapters': '+'.join(members), 'sign_difference': kway}


def held_out_rows(backbone: nn.Module, head: nn.Module, held: str, domains: list[str], tests: dict,
                  library: AdapterLibrary, args) -> list:
    others = [d for d in domains if d != held]
    test = tests[held]
    rows = [{'method': 'frozen', 'accuracy': accuracy(backbone, head, *test, None), 'adapters': '',
             'sign_difference': 0.0},
            {'method': 'own', 'accuracy': accuracy(backbone, head, *test, held), 'adapters': held,
             'sign_difference': 0.0}]
    rows += [{'method': f'single:{o}', 'accuracy': accuracy(backbone, head, *test, o), 'adapters': o,
              'sign_difference': 0.0} for o in others]
    probe = f'probe_{held}'
    train_adapter(backbone, head, probe, domain_split(held, 'train', args.probe_shots, args.seed), args)
    rows.append({'method': 'probe', 'accuracy': accuracy(backbone, head, *test, probe), 'adapters': probe,
                 'sign_difference': 0.0})
    k = min(args.k, len(others))
    top = [n for n, _ in select_by_similarity(backbone, probe, others, k)]
    adapter_soup(backbone, others, 'mix')
    rows.append({'method': 'soup_all', **mixed(backbone, head, 'mix', test, others)})
    adapter_soup(backbone, others, 'mix', k=k, reference=probe)
    rows.append({'method': 'soup_topk', **mixed(backbone, head, 'mix', test, top)})
    pv.delete_adapter(backbone, probe)
    rows += selection_rows(backbone, head, held, others, test, library, args)
    combine_adapters(backbone, others, None, 'mix', method='ties', density=args.ties_density, scale=args.merge_scale)
    rows.append({'method': 'ties', **mixed(backbone, head, 'mix', test, others)})
    combine_adapters(backbone, others, None, 'mix', method='dare_ties', density=args.dare_density, seed=args.seed,
                     scale=args.merge_scale)
    rows.append({'method': 'dare', **mixed(backbone, head, 'mix', test, others)})
    for density in args.densities:
        combine_adapters(backbone, others, None, 'mix', method='ties', density=density, scale=args.merge_scale)
        rows.append({'method': f'ties@{density:g}', **mixed(backbone, head, 'mix', test, others)})
    return [{'held_out': held, **r} for r in rows]


def selection_rows(backbone: nn.Module, head: nn.Module, held: str, others: list[str], test: tuple,
                   library: AdapterLibrary, args) -> list[dict]:
    """AdapterSoup's selection by domain embedding and the greedy mixes, the held-out domain seen only through its
    ``--probe-shots`` images per class (their embedding; their labels for ``greedy_val``)."""
    images, labels = domain_split(held, 'train', args.probe_shots, args.seed)
    k = min(args.k, len(others))
    ranked = [n for n, _ in select_adapters(library, images, len(others), model=backbone, names=others)]
    cluster = [n for n, _ in select_adapters(library, images, min(args.clusters, len(others)), by='cluster',
                                             model=backbone, names=others, seed=args.seed)]
    rows = []
    for method, members in (('emb_topk', ranked[:k]), ('emb_cluster', cluster)):
        combine_adapters(backbone, members, None, 'mix')
        rows.append({'method': method, **mixed(backbone, head, 'mix', test, members)})
    sign = greedy_mix(backbone, ranked, 'mix', threshold=args.greedy_threshold)
    rows.append({'method': 'greedy_sign', **mixed(backbone, head, 'mix', test, sign.members)})
    val = greedy_mix(backbone, ranked, 'mix', evaluate=lambda m, name: accuracy(m, head, images, labels, name))
    rows.append({'method': 'greedy_val', **mixed(backbone, head, 'mix', test, val.members)})
    return rows


def pair_rows(backbone: nn.Module, head: nn.Module, domains: list[str], tests: dict, singles: dict,
              sign_density: float) -> tuple:
    """Every pair's 50/50 linear mixture, evaluated on the domains that are neither's (mean over them), beside the
    pair's sign difference (dense, and of the task vectors magnitude-pruned to ``sign_density``) and cosine."""
    signs = sign_difference(backbone, domains)
    top = sign_difference(backbone, domains, density=sign_density)
    cosine = task_vector_similarity(backbone, domains)
    rows = []
    pairs = [(i, j) for i in range(len(domains)) for j in range(i + 1, len(domains))]
    for i, j in progress(pairs, 'pairs'):
        a, b = domains[i], domains[j]
        rest = [d for d in domains if d not in (a, b)]
        combine_adapters(backbone, [a, b], [0.5, 0.5], 'pair')
        # with two domains no third one is left to evaluate a pair on: NaN, said in the table
        acc = float(np.mean([accuracy(backbone, head, *tests[d], 'pair') for d in rest])) if rest else math.nan
        pv.delete_adapter(backbone, 'pair')
        single = float(np.mean([(singles[d][a] + singles[d][b]) / 2 for d in rest])) if rest else math.nan
        rows.append({'a': a, 'b': b, 'sign_difference': float(signs.pairwise[i, j]),
                     'sign_difference_all': float(signs.pairwise_all[i, j]),
                     'sign_difference_pruned': float(top.pairwise[i, j]), 'cosine': float(cosine[i, j]),
                     'mix_accuracy': acc, 'single_mean': single, 'gain': acc - single})
    return rows, signs


def correlations(pairs: list[dict]) -> dict:
    """Pearson and Spearman of each pair measure (:data:`MEASURES`) against the mixture's accuracy and gain."""
    out = {'pairs': len(pairs)}
    for measure in MEASURES:
        x = np.array([p[measure] for p in pairs])
        for key in ('mix_accuracy', 'gain'):
            y = np.array([p[key] for p in pairs])
            ok = len(pairs) > 2 and np.ptp(x) > 0 and np.ptp(y) > 0
            pear = stats.pearsonr(x, y) if ok else (float('nan'), float('nan'))
            spear = stats.spearmanr(x, y) if ok else (float('nan'), float('nan'))
            out[f'{measure}~{key}'] = {'pearson': float(pear[0]), 'pearson_p': float(pear[1]),
                                       'spearman': float(spear[0]), 'spearman_p': float(spear[1]),
                                       'range': [float(x.min()), float(x.max())]}
    return out


# outputs ----------------------------------------------------------------------------------------------------------
def wide(rows: list[dict]) -> dict[str, dict[str, float]]:
    """held-out domain -> column (:data:`COLUMNS`) -> accuracy."""
    table = {}
    for r in rows:
        t = table.setdefault(r['held_out'], {})
        if r['method'].startswith('single:'):
            t.setdefault('_singles', []).append(r['accuracy'])
        elif r['method'] in COLUMNS:
            t[r['method']] = r['accuracy']
    for t in table.values():
        singles = t.pop('_singles')
        t['single_mean'], t['single_best'] = float(np.mean(singles)), max(singles)
    return table


def write_outputs(out: Path, rows: list[dict], pairs: list[dict], corr: dict, signs, args, seconds: float) -> None:
    with open(out / 'results.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=['held_out', 'method', 'adapters', 'accuracy', 'sign_difference'])
        w.writeheader()
        w.writerows(rows)
    with open(out / 'pairs.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(pairs[0]))
        w.writeheader()
        w.writerows(pairs)
    (out / 'results.md').write_text(markdown(wide(rows), corr, args))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (out / 'summary.json').write_text(json.dumps({'config': config, 'seconds': seconds, 'correlation': corr,
                                                 'table': wide(rows)}, indent=1))
    heatmap(signs, out / 'sign_difference.png')
    scatter(pairs, corr, out / 'sign_vs_accuracy.png')
    pruning_plot(rows, args.densities, out / 'pruning.png')


def markdown(table: dict, corr: dict, args) -> str:
    lines = ['| held-out domain | ' + ' | '.join(COLUMNS) + ' |', '|---' * (len(COLUMNS) + 1) + '|']
    for held, t in table.items():
        lines.append(f'| {held} | ' + ' | '.join(f'{t[c]:.3f}' for c in COLUMNS) + ' |')
    means = {c: float(np.mean([t[c] for t in table.values()])) for c in COLUMNS}
    lines.append('| **mean** | ' + ' | '.join(f'**{means[c]:.3f}**' for c in COLUMNS) + ' |')
    return '\n'.join(lines + ['', settings(args), '', *correlation_table(corr, args)]) + '\n'


def settings(args) -> str:
    return (f'soup_topk: k = {args.k} by task-vector cosine to a probe adapter ({args.probe_shots} images per class '
            f'of the held-out domain); emb_topk / emb_cluster: k = {args.k} by domain-embedding cosine ({args.pool} '
            f'feature; the held-out domain\'s from the probe images) / its k-means cluster of {args.clusters}; '
            f'greedy_sign: in that order while the k-way sign difference <= {args.greedy_threshold}; greedy_val: '
            f'while the accuracy on the probe images improves; ties: density {args.ties_density}; dare: dare_ties, '
            f'density {args.dare_density}; lambda {args.merge_scale}; LoRA rank {args.rank}, {args.init} '
            f'initialisation, {args.epochs} epochs.')


def correlation_table(corr: dict, args) -> list[str]:
    lines = [f'Pairs ({corr["pairs"]}): each 50/50 linear mixture on the domains that are neither\'s; accuracy, and '
             'gain = accuracy minus the mean of the two adapters alone there.', '',
             '| pair measure | range | Spearman (accuracy) | p | Spearman (gain) | p | Pearson (accuracy) | p |',
             '|---|---|---|---|---|---|---|---|']
    for measure in MEASURES:
        acc, gain = corr[f'{measure}~mix_accuracy'], corr[f'{measure}~gain']
        label = f'{measure} (density {args.sign_density})' if measure == 'sign_difference_pruned' else measure
        lines.append(f'| {label} | {acc["range"][0]:.3f}..{acc["range"][1]:.3f} | {acc["spearman"]:.3f} | '
                     f'{acc["spearman_p"]:.2g} | {gain["spearman"]:.3f} | {gain["spearman_p"]:.2g} | '
                     f'{acc["pearson"]:.3f} | {acc["pearson_p"]:.2g} |')
    return lines


def heatmap(signs, path: Path) -> None:
    n = len(signs.names)
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * n, 1.0 + 0.6 * n))
    m = signs.pairwise.numpy()
    off = m[~np.eye(n, dtype=bool)]
    image = ax.imshow(m, vmin=float(off.min()) if n > 1 else 0, vmax=float(off.max()) if n > 1 else 1, cmap='viridis')
    ax.set_xticks(range(n), signs.names, rotation=45, ha='right')
    ax.set_yticks(range(n), signs.names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f'{m[i, j]:.2f}', ha='center', va='center', fontsize=7, color='white')
    fig.colorbar(image, ax=ax, label='fraction of sign difference')
    ax.set_title('pairwise sign difference of the domain adapters (LoRA dW)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scatter(pairs: list[dict], corr: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    y = [p['mix_accuracy'] for p in pairs]
    for ax, measure, label in zip(axes, MEASURES[:2], ('dense dW', 'dW pruned by magnitude')):
        ax.scatter([p[measure] for p in pairs], y, s=18)
        ax.set_xlabel(f'sign difference of the pair ({label})')
        c = corr[f'{measure}~mix_accuracy']
        ax.set_title(f'Spearman {c["spearman"]:.2f} (p = {c["spearman_p"]:.2g}), Pearson {c["pearson"]:.2f}',
                     fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('50/50 mixture accuracy\n(mean over the other domains)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pruning_plot(rows: list[dict], densities: list[float], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    held = sorted({r['held_out'] for r in rows})
    for d in held:
        accs = [next(r['accuracy'] for r in rows if r['held_out'] == d and r['method'] == f'ties@{x:g}')
                for x in densities]
        ax.plot(densities, accs, marker='o', label=d, alpha=0.7)
    ax.set_xlabel('TIES density (fraction of each dW kept)')
    ax.set_ylabel('held-out accuracy')
    ax.set_xscale('log')
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def progress(items: list, what: str):
    for i, item in enumerate(items):
        print(f'\r{what}: {i + 1}/{len(items)}', end='', file=sys.stderr, flush=True)
        yield item
    print(file=sys.stderr)


def run(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    backbone = build_backbone()
    head = train_head(backbone)
    tests = {d: domain_split(d, 'test', seed=args.seed) for d in args.domains}
    library = build_library(backbone, head, args.domains, tests, args)
    singles = {h: {a: accuracy(backbone, head, *tests[h], a) for a in args.domains} for h in args.domains}
    rows = [r for held in progress(args.domains, 'held-out domains')
            for r in held_out_rows(backbone, head, held, args.domains, tests, library, args)]
    pairs, signs = pair_rows(backbone, head, args.domains, tests, singles, args.sign_density)
    corr = correlations(pairs)
    seconds = time.perf_counter() - start
    write_outputs(args.out, rows, pairs, corr, signs, args, seconds)
    return {'rows': rows, 'pairs': pairs, 'correlation': corr, 'singles': singles, 'seconds': seconds,
            'head': head, 'signs': signs}


# several seeds ----------------------------------------------------------------------------------------------------
def run_seeds(args: argparse.Namespace) -> dict[int, dict]:
    """The study once per seed of ``args.seeds`` (in ``OUT/seed_<s>``), then the summary over seeds in ``OUT``."""
    results = {}
    for seed in args.seeds:
        print(f'seed {seed}', file=sys.stderr)
        results[seed] = run(argparse.Namespace(**{**vars(args), 'seed': seed, 'out': args.out / f'seed_{seed}'}))
    write_seed_outputs(args, results)
    return results


def seed_table(results: dict[int, dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """held-out domain (and 'mean': of each seed's mean over domains) -> column -> (mean, std over seeds; ddof 1)."""
    tables = [wide(r['rows']) for r in results.values()]
    out = {}
    for held in tables[0]:
        out[held] = {c: _mean_std([t[held][c] for t in tables]) for c in COLUMNS}
    out['mean'] = {c: _mean_std([np.mean([t[h][c] for h in t]) for t in tables]) for c in COLUMNS}
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def members_per_mix(results: dict[int, dict]) -> dict[str, float]:
    """Mean number of adapters in each mixture (over held-out domains and seeds)."""
    rows = [r for res in results.values() for r in res['rows'] if r['method'] in MIXES]
    return {m: float(np.mean([len(r['adapters'].split('+')) for r in rows if r['method'] == m])) for m in MIXES}


def write_seed_outputs(args: argparse.Namespace, results: dict[int, dict]) -> None:
    table, pooled = seed_table(results), [p for r in results.values() for p in r['pairs']]
    pooled_corr = correlations(pooled)
    lines = [f'Mean +- std over seeds {list(results)} (std with ddof 1).', '',
             '| held-out domain | ' + ' | '.join(COLUMNS) + ' |', '|---' * (len(COLUMNS) + 1) + '|']
    for held, t in table.items():
        cells = [f'{t[c][0]:.3f} +- {t[c][1]:.3f}' for c in COLUMNS]
        lines.append(f'| {"**mean**" if held == "mean" else held} | ' + ' | '.join(cells) + ' |')
    members = members_per_mix(results)
    lines += ['', 'Adapters per mixture (mean): ' + ', '.join(f'{m} {n:.1f}' for m, n in members.items()), '',
              settings(args), '']
    for seed, r in results.items():
        lines += [f'Seed {seed}:', '', *correlation_table(r['correlation'], args), '']
    lines += ['All seeds\' pairs pooled (not independent samples):', '', *correlation_table(pooled_corr, args)]
    (args.out / 'results.md').write_text('\n'.join(lines) + '\n')
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (args.out / 'summary.json').write_text(json.dumps(
        {'config': config, 'seconds': {s: r['seconds'] for s, r in results.items()}, 'table': table,
         'members': members, 'correlation': {s: r['correlation'] for s, r in results.items()},
         'correlation_pooled': pooled_corr}, indent=1))
    signs = [r['signs'] for r in results.values()]
    heatmap(SimpleNamespace(names=signs[0].names, pairwise=torch.stack([x.pairwise for x in signs]).mean(0)),
            args.out / 'sign_difference.png')
    scatter(pooled, pooled_corr, args.out / 'sign_vs_accuracy.png')
    mean_rows = [{'held_out': h, 'method': f'ties@{d:g}', 'accuracy': float(np.mean(
        [next(x['accuracy'] for x in r['rows'] if x['held_out'] == h and x['method'] == f'ties@{d:g}')
         for r in results.values()]))} for h in args.domains for d in args.densities]
    pruning_plot(mean_rows, args.densities, args.out / 'pruning.png')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, required=True, help='output folder (library, tables, plots)')
    parser.add_argument('--domains', nargs='+', default=list(DOMAINS), choices=DOMAINS, metavar='DOMAIN',
                        help='DigitsMultiTask domains (default: all ten)')
    parser.add_argument('--epochs', type=int, default=20, help='epochs per domain adapter')
    parser.add_argument('--rank', type=int, default=4, help='LoRA rank (on every block\'s qkv)')
    parser.add_argument('--lr', type=float, default=1e-2)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--train-shots', type=int, help='train images per class per domain (default: all, ~11)')
    parser.add_argument('--probe-shots', type=int, default=2,
                        help='images per class of the held-out domain for the probe adapter that selects top-k')
    parser.add_argument('--k', type=int, default=3, help='adapters in the similarity-selected soups')
    parser.add_argument('--clusters', type=int, default=3,
                        help='k-means clusters of the other domains\' embeddings (emb_cluster)')
    parser.add_argument('--pool', choices=('cls', 'mean'), default='cls', help='domain embedding: CLS or mean token')
    parser.add_argument('--greedy-threshold', type=float, default=0.3,
                        help='greedy_sign: largest k-way sign difference of the mixture')
    parser.add_argument('--ties-density', type=float, default=0.2)
    parser.add_argument('--dare-density', type=float, default=0.5)
    parser.add_argument('--merge-scale', type=float, default=1.0,
                        help='lambda of TIES and DARE (their disjoint mean, times lambda)')
    parser.add_argument('--init', choices=('shared', 'independent'), default='shared',
                        help='LoRA initialisation: the same for every adapter, or drawn per adapter')
    parser.add_argument('--densities', nargs='+', type=float, default=[0.05, 0.1, 0.2, 0.5, 1.0],
                        help='TIES densities of the pruning curve')
    parser.add_argument('--sign-density', type=float, default=0.1,
                        help='density the task vectors are magnitude-pruned to for the pruned sign difference')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--seeds', type=int, nargs='+',
                        help='repeat the study for each seed (OUT/seed_<s>) and summarise mean +- std in OUT')
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if len(args.domains) < 2 or len(set(args.domains)) != len(args.domains):
        parser.error(f'--domains needs at least two distinct domains, got {args.domains}')
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_torch_threads(args.threads)
    if args.seeds and len(args.seeds) > 1:
        seconds = sum(r['seconds'] for r in run_seeds(args).values())
    else:
        seconds = run(argparse.Namespace(**{**vars(args), 'seed': (args.seeds or [args.seed])[0]}))['seconds']
    print((args.out / 'results.md').read_text())
    print(f'{seconds:.0f} s; wrote {args.out}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
