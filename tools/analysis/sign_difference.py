"""Pairwise fraction of sign difference between adapters' task vectors (Nguyen & Le 2024), read from tuner files.

    python tools/analysis/sign_difference.py a.safetensors b.safetensors c.safetensors --model vit_digits_demo \\
        --out results/signs [--model-kwargs '{"num_classes": 10}'] [--densities 0.5 0.2 0.1]

Every file is loaded as a named adapter (its file stem) onto the backbone ``--model`` builds (timm, no pretrained
weights: task vectors do not depend on the frozen weights). Writes to ``--out``:

- ``sign_difference.png``: heat map of the pairwise fraction (entries where both are non-zero);
- ``sign_difference.csv`` / ``.md``: the pairwise matrices (over entries where both are non-zero, and over all
  entries), each adapter's fraction against the elected (TIES) sign and the k-way fraction;
- ``per_layer.csv``: the pairwise fraction per tuned op;
- with ``--densities``, ``pruning.csv``: the mean pairwise fraction after magnitude-pruning every adapter to each
  density (per tensor).
"""
import argparse
import csv
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import petl_vision as pv  # noqa: E402
from petl_vision.composition import SignDifference, sign_difference  # noqa: E402


def adapter_name(path: Path) -> str:
    name = re.sub(r'[^A-Za-z0-9_\-]', '_', path.stem)
    return name if re.match(r'[A-Za-z_]', name) else f'a_{name}'


def load_adapters(model: torch.nn.Module, files: list[Path]) -> list[str]:
    names = [adapter_name(f) for f in files]
    if len(set(names)) != len(names):
        raise SystemExit(f'two files give the same adapter name: {names}; rename one')
    for f, name in zip(files, names):
        pv.load_tuners(model, f, adapter=name)
    return names


def mean_offdiagonal(matrix: torch.Tensor) -> float:
    n = matrix.shape[0]
    return float((matrix.sum() - matrix.diagonal().sum()) / (n * (n - 1))) if n > 1 else 0.0


def heatmap(result: SignDifference, path: Path) -> None:
    n = len(result.names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * n, 1.0 + 0.7 * n))
    image = ax.imshow(result.pairwise.numpy(), vmin=0, vmax=1, cmap='viridis')
    ax.set_xticks(range(n), result.names, rotation=45, ha='right')
    ax.set_yticks(range(n), result.names)
    for i in range(n):
        for j in range(n):
            value = float(result.pairwise[i, j])
            ax.text(j, i, f'{value:.2f}', ha='center', va='center', color='white' if value < 0.5 else 'black')
    fig.colorbar(image, ax=ax, label='fraction of sign difference')
    ax.set_title(f'pairwise sign difference (k-way vs elected: {result.kway:.3f})')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_tables(result: SignDifference, out: Path) -> None:
    names = result.names
    with open(out / 'sign_difference.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['adapter', *[f'nonzero:{n}' for n in names], *[f'all:{n}' for n in names], 'vs_elected'])
        for i, n in enumerate(names):
            w.writerow([n, *[f'{float(v):.6f}' for v in result.pairwise[i]],
                        *[f'{float(v):.6f}' for v in result.pairwise_all[i]], f'{float(result.elected[i]):.6f}'])
    with open(out / 'per_layer.csv', 'w', newline='') as f:
        w = csv.writer(f)
        pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
        w.writerow(['layer', *[f'{names[i]}|{names[j]}' for i, j in pairs]])
        for layer, m in result.per_layer.items():
            w.writerow([layer, *[f'{float(m[i, j]):.6f}' for i, j in pairs]])
    lines = ['| adapter | ' + ' | '.join(names) + ' | vs elected |', '|---' * (len(names) + 2) + '|']
    lines += [f'| {n} | ' + ' | '.join(f'{float(v):.3f}' for v in result.pairwise[i]) +
              f' | {float(result.elected[i]):.3f} |' for i, n in enumerate(names)]
    lines += ['', f'k-way fraction against the elected sign: {result.kway:.4f}; mean pairwise: '
              f'{mean_offdiagonal(result.pairwise):.4f} (non-zero entries), '
              f'{mean_offdiagonal(result.pairwise_all):.4f} (all entries)']
    (out / 'sign_difference.md').write_text('\n'.join(lines) + '\n')


def write_pruning(model: torch.nn.Module, names: list[str], densities: list[float], out: Path) -> list[dict]:
    rows = []
    for d in [1.0, *densities]:
        r = sign_difference(model, names, density=d)
        rows.append({'density': d, 'mean_pairwise': mean_offdiagonal(r.pairwise),
                     'mean_pairwise_all': mean_offdiagonal(r.pairwise_all), 'kway': r.kway})
    with open(out / 'pruning.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def analyse(model: torch.nn.Module, files: list[Path], out: Path, densities: list[float] = ()) -> SignDifference:
    """Load ``files`` as adapters onto ``model`` and write the heat map and tables to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    names = load_adapters(model, files)
    if len(names) < 2:
        raise SystemExit('give at least two tuner files to compare')
    result = sign_difference(model, names)
    heatmap(result, out / 'sign_difference.png')
    write_tables(result, out)
    if densities:
        write_pruning(model, names, list(densities), out)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('files', nargs='+', type=Path, help='tuner files (pv.save_tuners) of one backbone')
    parser.add_argument('--model', required=True, help='timm model name the files were trained on')
    parser.add_argument('--model-kwargs', default='{}', help='JSON keyword arguments of timm.create_model')
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--densities', nargs='*', type=float, default=[], help='magnitude-pruning densities')
    args = parser.parse_args(argv)
    import timm

    model = timm.create_model(args.model, pretrained=False, **json.loads(args.model_kwargs)).eval()
    result = analyse(model, args.files, args.out, args.densities)
    print((args.out / 'sign_difference.md').read_text())
    print(f'k-way {result.kway:.4f}; wrote {args.out}')


if __name__ == '__main__':
    main()
