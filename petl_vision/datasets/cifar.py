"""CIFAR-100 read from the official python archive (``cifar-100-python.tar.gz``, extracted).

Each data info is ``{'img': uint8 (3, 32, 32), 'gt_label': fine label 0..99}`` (see :mod:`.array_dataset`); the
pickles are read directly (``data`` (N, 3072) uint8 rows = R, G, B planes of 32 x 32, ``fine_labels``; ``meta``
has ``fine_label_names``) rather than through torchvision, whose loader re-checks the archive's md5 on every start.
"""
from __future__ import annotations

import os.path as osp
import pickle
from typing import ClassVar

import numpy as np

from petl_vision.datasets.array_dataset import ArrayImageDataset
from petl_vision.datasets.layout import require_paths
from petl_vision.registry import DATASETS

CIFAR100_FOLDER = 'cifar-100-python'
CIFAR100_LAYOUT = f'  {CIFAR100_FOLDER}/train   50,000 images\n  {CIFAR100_FOLDER}/test    10,000 images\n' \
                  f'  {CIFAR100_FOLDER}/meta    class names'


def load_cifar_pickle(path: str) -> dict:
    """One CIFAR python pickle (written by Python 2: byte strings decoded as latin1)."""
    with open(path, 'rb') as f:
        return pickle.load(f, encoding='latin1')


@DATASETS.register_module()
class CIFAR100(ArrayImageDataset):
    """CIFAR-100 with its 100 fine classes: 50,000 train / 10,000 test images of 32 x 32.

    Args:
        data_root: the folder that contains ``cifar-100-python/``.
        split: ``'train'`` or ``'test'``.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).

    ``metainfo['classes']`` holds the 100 names from ``meta`` once the data is loaded.
    """

    SPLITS: ClassVar[tuple[str, ...]] = ('train', 'test')
    SIZES: ClassVar[dict[str, int]] = {'train': 50_000, 'test': 10_000}

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"CIFAR100 split must be one of {self.SPLITS}, got '{split}'")
        self.split = split
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        files = [osp.join(CIFAR100_FOLDER, name) for name in (self.split, 'meta')]
        require_paths('CIFAR100', self.data_root, files, CIFAR100_LAYOUT, 'cifar100')
        data = load_cifar_pickle(osp.join(self.data_root, files[0]))
        meta = load_cifar_pickle(osp.join(self.data_root, files[1]))
        self._metainfo['classes'] = tuple(meta['fine_label_names'])
        images = np.asarray(data['data'], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, 3, 32, 32)
        return [{'img': img, 'gt_label': int(label)} for img, label in zip(images, data['fine_labels'])]

    @property
    def complete(self) -> bool:
        """Whether the split has its official size (50,000 / 10,000); subsets and test fixtures do not."""
        return len(self) == self.SIZES[self.split]
