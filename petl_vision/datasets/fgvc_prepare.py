"""Build VPT-style split files for the FGVC datasets from their official, extracted archives.

Each reader returns the official split as ``{split: {image path relative to the image root: class id}}``
(``train`` and ``test``; Oxford Flowers also has an official ``val``). :func:`vpt_splits` then carves ``val`` out
of ``train`` where there is none (``val_fraction`` of each class, rounded half up, drawn with a generator seeded
with ``(seed, class id)``), as VPT did; :func:`write_splits` writes ``train.json``, ``val.json``, ``test.json``.
Official layouts read here:

- CUB-200-2011, NABirds: ``images.txt`` (``<id> <path>``), ``image_class_labels.txt`` (``<id> <class>``),
  ``train_test_split.txt`` (``<id> <1 train / 0 test>``), images under ``images/``.
- Oxford Flowers-102: ``imagelabels.mat`` (``labels`` 1..102 of ``jpg/image_%05d.jpg``), ``setid.mat``
  (``trnid``, ``valid``, ``tstid``: 1-based image numbers).
- Stanford Dogs: ``train_list.mat`` and ``test_list.mat`` (``file_list`` relative to ``Images/``, ``labels``).
- Stanford Cars: ``devkit/cars_train_annos.mat`` and ``cars_test_annos_withlabels.mat`` (at the root or in
  ``devkit/``), ``annotations`` structs with ``fname`` and ``class``; images in ``cars_train/``, ``cars_test/``.
"""
from __future__ import annotations

import json
import os.path as osp
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.io

Split = dict[str, int]


def _read_table(path: str) -> dict[str, str]:
    """A two-column text file ``<id> <value>`` (the value may contain spaces) as ``{id: value}``."""
    with open(path) as f:
        return dict(line.strip().split(maxsplit=1) for line in f if line.strip())


def read_cub_style(root: str) -> dict[str, Split]:
    """CUB-200-2011 and NABirds (same three index files, ids are ints or uuids)."""
    paths = _read_table(osp.join(root, 'images.txt'))
    classes = _read_table(osp.join(root, 'image_class_labels.txt'))
    is_train = _read_table(osp.join(root, 'train_test_split.txt'))
    splits: dict[str, Split] = {'train': {}, 'test': {}}
    for image_id, path in paths.items():
        splits['train' if is_train[image_id] == '1' else 'test'][path] = int(classes[image_id])
    return splits


def read_flowers(root: str) -> dict[str, Split]:
    labels = scipy.io.loadmat(osp.join(root, 'imagelabels.mat'), squeeze_me=True)['labels']
    setid = scipy.io.loadmat(osp.join(root, 'setid.mat'), squeeze_me=True)
    return {split: {f'jpg/image_{int(n):05d}.jpg': int(labels[int(n) - 1]) for n in np.atleast_1d(setid[key])}
            for split, key in (('train', 'trnid'), ('val', 'valid'), ('test', 'tstid'))}


def read_dogs(root: str) -> dict[str, Split]:
    splits = {}
    for split in ('train', 'test'):
        mat = scipy.io.loadmat(osp.join(root, f'{split}_list.mat'), squeeze_me=True)
        splits[split] = {str(p): int(c) for p, c in zip(np.atleast_1d(mat['file_list']), np.atleast_1d(mat['labels']))}
    return splits


def read_cars(root: str) -> dict[str, Split]:
    candidates = [osp.join(root, 'cars_test_annos_withlabels.mat'),
                  osp.join(root, 'devkit', 'cars_test_annos_withlabels.mat')]
    test_file = next((p for p in candidates if osp.isfile(p)), candidates[0])
    splits = {}
    for split, path in (('train', osp.join(root, 'devkit', 'cars_train_annos.mat')), ('test', test_file)):
        annos = np.atleast_1d(scipy.io.loadmat(path, squeeze_me=True)['annotations'])
        splits[split] = {f'cars_{split}/{a["fname"]}': int(a['class']) for a in annos}
    return splits


@dataclass(frozen=True)
class FGVCSource:
    """How to turn one official archive into VPT splits."""

    dataset: str  # the petl_vision dataset class
    homepage: str  # where the official archive comes from
    image_dir: str  # image root, relative to the dataset folder
    official_files: tuple[str, ...]  # annotation files the reader needs (to name them when missing)
    counts: dict[str, int]  # official split sizes, checked before writing
    read: Callable[[str], dict[str, Split]]


CUB_FILES = ('images.txt', 'image_class_labels.txt', 'train_test_split.txt')
FGVC_SOURCES: dict[str, FGVCSource] = {
    'cub': FGVCSource(
        'CUB200', 'https://data.caltech.edu/records/65de6-vzc60', 'images', CUB_FILES,
        {'train': 5_994, 'test': 5_794}, read_cub_style),
    'nabirds': FGVCSource(
        'NABirds', 'https://dl.allaboutbirds.org/nabirds', 'images', CUB_FILES,
        {'train': 23_929, 'test': 24_633}, read_cub_style),
    'flowers': FGVCSource(
        'OxfordFlowers', 'https://www.robots.ox.ac.uk/~vgg/data/flowers/102/', '', ('imagelabels.mat', 'setid.mat'),
        {'train': 1_020, 'val': 1_020, 'test': 6_149}, read_flowers),
    'dogs': FGVCSource(
        'StanfordDogs', 'http://vision.stanford.edu/aditya86/ImageNetDogs/', 'Images',
        ('train_list.mat', 'test_list.mat'), {'train': 12_000, 'test': 8_580}, read_dogs),
    'cars': FGVCSource(
        'StanfordCars', 'https://ai.stanford.edu/~jkrause/cars/car_dataset.html', '', ('devkit/cars_train_annos.mat',),
        {'train': 8_144, 'test': 8_041}, read_cars),
}


def count_mismatches(official: dict[str, Split], counts: dict[str, int]) -> list[str]:
    """``'train: 4 images, expected 5,994'`` for every official split whose size differs from ``counts``."""
    return [f'{split}: {len(official.get(split, {})):,} images, expected {n:,}'
            for split, n in counts.items() if len(official.get(split, {})) != n]


def vpt_splits(official: dict[str, Split], val_fraction: float = 0.1, seed: int = 0) -> dict[str, Split]:
    """``train``/``val``/``test``: the official ``val`` if there is one, else ``val_fraction`` of each class of
    ``train`` (rounded half up), drawn with a generator seeded with ``(seed, class id)``."""
    if 'val' in official:
        return {split: dict(official[split]) for split in ('train', 'val', 'test')}
    by_class: dict[int, list[str]] = {}
    for path, c in official['train'].items():
        by_class.setdefault(c, []).append(path)
    val_paths = set()
    for c, paths in by_class.items():
        n_val = int(np.floor(len(paths) * val_fraction + 0.5))
        order = np.random.default_rng((seed, c)).permutation(len(paths))
        val_paths.update(paths[i] for i in order[:n_val])
    train = {p: c for p, c in official['train'].items() if p not in val_paths}
    val = {p: c for p, c in official['train'].items() if p in val_paths}
    return {'train': train, 'val': val, 'test': dict(official['test'])}


def write_splits(root: str, splits: dict[str, Split]) -> list[str]:
    """Write ``<root>/{train,val,test}.json`` (VPT's ``{relative path: class id}``); returns the paths written."""
    written = []
    for split in ('train', 'val', 'test'):
        path = osp.join(root, f'{split}.json')
        with open(path, 'w') as f:
            json.dump(splits[split], f, indent=0)
        written.append(path)
    return written
