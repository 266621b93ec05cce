"""The five FGVC datasets of VPT (Jia et al., ECCV 2022, https://github.com/KMnP/vpt) in VPT's split format.

``data_root`` is the extracted official archive plus VPT's split files ``train.json``, ``val.json`` and
``test.json``, each ``{image path relative to the image root: class id}`` (written by ``tools/prepare_data.py``
from the official annotations, or VPT's released files). The image root is ``images/`` for CUB and NABirds,
``Images/`` for Stanford Dogs and ``data_root`` itself for Oxford Flowers and Stanford Cars.

Class ids are remapped to contiguous labels ``0..C-1`` in increasing order of the original ids, using the ids of
all three split files, so every split agrees (VPT's ``JSONDataset`` maps each split on its own ids).
``metainfo['classes'][label]`` is the original id as a string. Splits: ``'train'``, ``'val'``, ``'test'`` and
``'trainval'`` (train + val, for the final run once hyper-parameters were chosen on val). The three files are
the one definition of the splits; files that list an image twice are refused.

Each data info is ``{'img_path': str, 'gt_label': int}``; pipelines start with ``LoadImage``.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import ClassVar

from mmengine.dataset import BaseDataset

from petl_vision.datasets.layout import require_paths
from petl_vision.datasets.splits import check_disjoint_files
from petl_vision.registry import DATASETS

SPLIT_FILES = ('train.json', 'val.json', 'test.json')


class FGVCDataset(BaseDataset):
    """One VPT-format FGVC dataset; subclasses set ``IMAGE_DIR``, ``NUM_CLASSES`` and ``PREPARE``.

    Args:
        data_root: the dataset folder holding ``train.json``, ``val.json``, ``test.json`` and the images.
        split: ``'train'``, ``'val'``, ``'test'`` or ``'trainval'``.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).
    """

    IMAGE_DIR: ClassVar[str] = ''
    NUM_CLASSES: ClassVar[int] = 0  # of the full dataset; configs size the head with it
    PREPARE: ClassVar[str] = ''  # tools/prepare_data.py sub-command
    SPLITS: ClassVar[tuple[str, ...]] = ('train', 'val', 'test', 'trainval')

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"{type(self).__name__} split must be one of {self.SPLITS}, got '{split}'")
        self.split = split
        super().__init__(data_root=data_root, **kwargs)

    @classmethod
    def layout(cls) -> str:
        image_root = f'{cls.IMAGE_DIR}/' if cls.IMAGE_DIR else '(data_root itself)'
        return (f'  train.json, val.json, test.json   {{image path relative to the image root: class id}}\n'
                f'  image root: {image_root}')

    def load_data_list(self) -> list[dict]:
        require_paths(type(self).__name__, self.data_root, (*SPLIT_FILES, self.IMAGE_DIR or '.'), self.layout(),
                      self.PREPARE)
        annotations = {}
        for name in SPLIT_FILES:
            with open(osp.join(self.data_root, name)) as f:
                annotations[name.removesuffix('.json')] = {path: int(c) for path, c in json.load(f).items()}
        check_disjoint_files(f'{type(self).__name__}({self.data_root})',
                             {f'{split}.json': paths for split, paths in annotations.items()})
        class_ids = sorted({c for split in annotations.values() for c in split.values()})
        label_of = {c: label for label, c in enumerate(class_ids)}
        self._metainfo['classes'] = tuple(str(c) for c in class_ids)
        image_root = osp.join(self.data_root, self.IMAGE_DIR)
        parts = ('train', 'val') if self.split == 'trainval' else (self.split,)
        return [{'img_path': osp.join(image_root, path), 'gt_label': label_of[c]}
                for part in parts for path, c in annotations[part].items()]


@DATASETS.register_module()
class CUB200(FGVCDataset):
    """Caltech-UCSD Birds-200-2011: 200 classes; 5,994 official train, 5,794 test."""

    IMAGE_DIR = 'images'
    NUM_CLASSES = 200
    PREPARE = 'cub'


@DATASETS.register_module()
class NABirds(FGVCDataset):
    """NABirds: 555 leaf classes (V-PETL Bench's 55 is a typo); 23,929 official train, 24,633 test."""

    IMAGE_DIR = 'images'
    NUM_CLASSES = 555
    PREPARE = 'nabirds'


@DATASETS.register_module()
class OxfordFlowers(FGVCDataset):
    """Oxford Flowers-102: 102 classes; the official 1,020 train / 1,020 val / 6,149 test split."""

    IMAGE_DIR = ''
    NUM_CLASSES = 102
    PREPARE = 'flowers'


@DATASETS.register_module()
class StanfordDogs(FGVCDataset):
    """Stanford Dogs: 120 classes; 12,000 official train, 8,580 test."""

    IMAGE_DIR = 'Images'
    NUM_CLASSES = 120
    PREPARE = 'dogs'


@DATASETS.register_module()
class StanfordCars(FGVCDataset):
    """Stanford Cars: 196 classes; 8,144 official train, 8,041 test."""

    IMAGE_DIR = ''
    NUM_CLASSES = 196
    PREPARE = 'cars'
