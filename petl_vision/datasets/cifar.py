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
from petl_vision.datasets.splits import record_split
from petl_vision.registry import DATASETS

CIFAR100_FOLDER = 'cifar-100-python'
CIFAR100_LAYOUT = f'  {CIFAR100_FOLDER}/train   50,000 images\n  {CIFAR100_FOLDER}/test    10,000 images\n' \
                  f'  {CIFAR100_FOLDER}/meta    class names'


def _text(value):
    return value.decode('latin1') if isinstance(value, bytes) else value


def load_cifar_pickle(path: str, keys: tuple[str, ...]) -> dict:
    """One CIFAR python pickle as a dict with ``str`` keys (and ``str`` class names).

    The official pickles were written by Python 2 (byte strings, decoded here as latin1); converters that load them
    with ``encoding='bytes'`` write ``b'data'``-style keys, which are accepted too. A truncated or foreign file
    raises ``ValueError`` naming it and the keys it lacks.
    """
    try:
        with open(path, 'rb') as f:
            raw = pickle.load(f, encoding='latin1')
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise ValueError(f'CIFAR100: {path} is truncated or not a CIFAR python pickle ({type(err).__name__}: {err}); '
                         're-extract cifar-100-python.tar.gz and check it with `python tools/prepare_data.py '
                         f'cifar100 --root DIR`') from None
    data = {_text(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}
    missing = [k for k in keys if k not in data]
    if missing:
        found = sorted(map(str, data)) if isinstance(raw, dict) else f'a {type(raw).__name__}'
        raise ValueError(f'CIFAR100: {path} lacks {missing} (found {found}); expected the official pickle with '
                         f'{list(keys)}')
    return data


@DATASETS.register_module()
class CIFAR100(ArrayImageDataset):
    """CIFAR-100 with its 100 fine classes: 50,000 train / 10,000 test images of 32 x 32.

    Args:
        data_root: the folder that contains ``cifar-100-python/``.
        split: ``'train'``, ``'val'``, ``'trainval'`` (all 50,000 training images) or ``'test'``. CIFAR-100 has
            no validation split: ``val`` is ``val_size`` training images drawn with ``seed``, ``train`` the rest,
            so model selection never looks at ``test``.
        val_size, seed: size and seed of the held-out validation part of the training pickle.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).

    ``metainfo['classes']`` holds the 100 names from ``meta`` once the data is loaded.
    """

    SPLITS: ClassVar[tuple[str, ...]] = ('train', 'val', 'trainval', 'test')
    SIZES: ClassVar[dict[str, int]] = {'trainval': 50_000, 'test': 10_000}

    def __init__(self, data_root: str, split: str = 'train', val_size: int = 5_000, seed: int = 0, **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"CIFAR100 split must be one of {self.SPLITS}, got '{split}'")
        self.split, self.val_size, self.seed = split, val_size, seed
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        source = 'test' if self.split == 'test' else 'train'
        files = [osp.join(CIFAR100_FOLDER, name) for name in (source, 'meta')]
        require_paths('CIFAR100', self.data_root, files, CIFAR100_LAYOUT, 'cifar100')
        source = osp.join(self.data_root, files[0])
        data = load_cifar_pickle(source, ('data', 'fine_labels'))
        meta = load_cifar_pickle(osp.join(self.data_root, files[1]), ('fine_label_names',))
        self._metainfo['classes'] = tuple(_text(name) for name in meta['fine_label_names'])
        images = np.asarray(data['data'], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, 3, 32, 32)
        labels = data['fine_labels']
        order = self._split_order(len(images))
        record_split(self, osp.abspath(source), self.split, order.tolist(),
                     {'val_size': self.val_size, 'seed': self.seed} if self.split in ('train', 'val') else {})
        return [{'img': images[i], 'gt_label': int(labels[i])} for i in order]

    def _split_order(self, n: int) -> np.ndarray:
        """Indices into the pickle of this split: ``val`` is ``val_size`` drawn with ``seed``, ``train`` the rest."""
        if self.split not in ('train', 'val'):
            return np.arange(n)
        if not 0 < self.val_size < n:
            raise ValueError(f'val_size={self.val_size} must be between 1 and {n - 1}')
        perm = np.random.default_rng(self.seed).permutation(n)
        return np.sort(perm[:self.val_size] if self.split == 'val' else perm[self.val_size:])

    @property
    def complete(self) -> bool:
        """Whether the split has its official size (trainval 50,000 / test 10,000; train + val = 50,000)."""
        full = self.SIZES['trainval']
        expected = {'train': full - self.val_size, 'val': self.val_size}.get(self.split) or self.SIZES[self.split]
        return len(self) == expected
