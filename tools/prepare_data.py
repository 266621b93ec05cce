"""Prepare or check the image-classification datasets: ``python tools/prepare_data.py NAME --root DIR``.

    cifar100   download the python archive with torchvision (md5-checked) into DIR/cifar-100-python
    cub, nabirds, flowers, dogs, cars
               write VPT's train.json / val.json / test.json into DIR, the extracted official archive
               (official sizes and image files are checked first)
    vtab       check DIR (NOAH's vtab-1k folder): every task's list files, their sizes, labels and images
    digits     nothing to download (scikit-learn ships the data); prints the split sizes

See docs/datasets.md for the layouts and the download pages.
"""
from __future__ import annotations

import argparse
import os.path as osp
from collections.abc import Sequence

from rich.console import Console
from rich.progress import track
from rich.table import Table

from petl_vision.datasets import CIFAR100, SklearnDigits
from petl_vision.datasets.fgvc_prepare import FGVC_SOURCES, count_mismatches, vpt_splits, write_splits
from petl_vision.datasets.vtab import VTAB_SPLIT_FILES, VTAB_SPLIT_SIZES, VTAB_TASKS, check_vtab_task, read_vtab_list

console = Console(soft_wrap=True)

VTAB_HOWTO = """VTAB-1k has no file download: its 19 tasks are exported from TensorFlow Datasets by NOAH's
data/vtab-source/get_vtab1k.py (https://github.com/ZhangYuanhan-AI/NOAH, needs tensorflow, tensorflow-datasets and
the VTAB task_adaptation package; some sources such as diabetic_retinopathy and sun397 need a manual download into
the TFDS folder first). It writes vtab-1k/<task>/{train800,val200,train800val200,test}.txt and images/<split>/.
Pass that vtab-1k folder as --root to check it, and as data_root to VTAB1k."""


def missing_files(paths: Sequence[str], description: str) -> list[str]:
    """The paths that are not files, checked with a progress bar."""
    return [p for p in track(paths, description=description, console=console) if not osp.isfile(p)]


def fail(message: str) -> int:
    console.print(f'[red]error:[/red] {message}')
    return 1


def prepare_cifar100(root: str) -> int:
    from torchvision.datasets import CIFAR100 as TorchvisionCIFAR100

    for train in (True, False):
        TorchvisionCIFAR100(root, train=train, download=True)
    sizes = {split: len(CIFAR100(data_root=root, split=split)) for split in CIFAR100.SPLITS}
    console.print(f'CIFAR-100 ready in {osp.join(root, "cifar-100-python")}: {sizes}')
    return 0


def prepare_fgvc(name: str, root: str, val_fraction: float, seed: int, skip_count_check: bool) -> int:
    source = FGVC_SOURCES[name]
    absent = [f for f in source.official_files if not osp.isfile(osp.join(root, f))]
    if absent:
        return fail(f"'{root}' lacks {absent}: download the official {source.dataset} archive from "
                    f'{source.homepage}, extract it so that these files are directly in --root, and rerun.')
    official = source.read(root)
    mismatches = count_mismatches(official, source.counts)
    if mismatches and not skip_count_check:
        return fail(f'{source.dataset} official split sizes differ ({"; ".join(mismatches)}): the archive is '
                    'incomplete or another version. Re-extract it, or pass --skip-count-check to write splits for '
                    'exactly these images.')
    image_root = osp.join(root, source.image_dir)
    paths = [osp.join(image_root, p) for split in official.values() for p in split]
    missing = missing_files(paths, f'checking {len(paths):,} {source.dataset} images')
    if missing:
        return fail(f'{len(missing):,} listed images are missing under {image_root}, e.g. {missing[:3]}; '
                    're-extract the images of the official archive.')
    splits = vpt_splits(official, val_fraction=val_fraction, seed=seed)
    write_splits(root, splits)
    classes = len({c for split in splits.values() for c in split.values()})
    sizes = ', '.join(f'{split} {len(paths):,}' for split, paths in splits.items())
    console.print(f'{source.dataset}: wrote train.json, val.json, test.json in {root} ({sizes}; {classes} classes)')
    return 0


def check_vtab_split(task_root: str, split: str, num_classes: int) -> tuple[int, list[str]]:
    """Line count and problems of one list file of one task."""
    list_file = osp.join(task_root, VTAB_SPLIT_FILES[split])
    if not osp.isfile(list_file):
        return 0, [f'{VTAB_SPLIT_FILES[split]} missing']
    rows = read_vtab_list(list_file)
    problems = []
    expected = VTAB_SPLIT_SIZES[split]
    if (expected is None and not rows) or (expected is not None and len(rows) != expected):
        problems.append(f'{VTAB_SPLIT_FILES[split]} has {len(rows)} lines, expected {expected or "> 0"}')
    bad = sorted({label for _, label in rows if not 0 <= label < num_classes})
    if bad:
        problems.append(f'{VTAB_SPLIT_FILES[split]} labels {bad[:5]} outside 0..{num_classes - 1}')
    paths = [osp.join(task_root, rel) for rel, _ in rows]
    missing = missing_files(paths, f'{osp.basename(task_root)}/{VTAB_SPLIT_FILES[split]}')
    if missing:
        problems.append(f'{len(missing)} images of {VTAB_SPLIT_FILES[split]} missing, e.g. {missing[0]}')
    return len(rows), problems


def check_vtab(root: str, tasks: Sequence[str]) -> int:
    console.print(VTAB_HOWTO)
    if not osp.isdir(root):
        return fail(f"'{root}' is not a folder; pass the vtab-1k folder written by get_vtab1k.py as --root.")
    for task in tasks:
        try:
            check_vtab_task(task)
        except KeyError as err:
            return fail(err.args[0])
    table = Table('task', 'group', 'classes', *(f.removesuffix('.txt') for f in VTAB_SPLIT_FILES.values()), 'status')
    problems: dict[str, list[str]] = {}
    for task in tasks:
        group, num_classes = VTAB_TASKS[task]
        task_root = osp.join(root, task)
        if not osp.isdir(task_root):
            table.add_row(task, group, str(num_classes), *['-'] * len(VTAB_SPLIT_FILES), '[red]missing')
            problems[task] = [f'folder {task_root} missing']
            continue
        counts = []
        for split in VTAB_SPLIT_FILES:
            n, split_problems = check_vtab_split(task_root, split, num_classes)
            counts.append(f'{n:,}')
            problems.setdefault(task, []).extend(split_problems)
        table.add_row(task, group, str(num_classes), *counts, '[red]problems' if problems[task] else '[green]ok')
    console.print(table)
    failed = [task for task in tasks if problems[task]]
    for task in failed:
        console.print(f'{task}: ' + '; '.join(problems[task]))
    if failed:
        return fail(f'{len(failed)} of {len(tasks)} VTAB-1k tasks are incomplete in {root}; '
                    'rerun get_vtab1k.py for them.')
    console.print(f'VTAB-1k in {root}: all {len(tasks)} tasks complete.')
    return 0


def show_digits() -> int:
    sizes = {split: len(SklearnDigits(split=split)) for split in SklearnDigits.SPLITS}
    console.print(f'scikit-learn digits ship with scikit-learn; nothing to prepare. Default split (seed 0): {sizes}')
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('name', choices=['cifar100', *FGVC_SOURCES, 'vtab', 'digits'])
    parser.add_argument('--root', help='dataset folder (not needed for digits)')
    parser.add_argument('--val-fraction', type=float, default=0.1, help='FGVC: share of each train class kept for val')
    parser.add_argument('--seed', type=int, default=0, help='FGVC: seed of the val split')
    parser.add_argument('--skip-count-check', action='store_true',
                        help='FGVC: write splits even if the official split sizes differ (subsets)')
    parser.add_argument('--tasks', nargs='+', default=list(VTAB_TASKS), help='vtab: tasks to check (default: all 19)')
    args = parser.parse_args(argv)
    if args.name != 'digits' and not args.root:
        parser.error(f'{args.name} needs --root DIR')
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.name == 'cifar100':
        return prepare_cifar100(args.root)
    if args.name in FGVC_SOURCES:
        return prepare_fgvc(args.name, args.root, args.val_fraction, args.seed, args.skip_count_check)
    if args.name == 'vtab':
        return check_vtab(args.root, args.tasks)
    return show_digits()


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
