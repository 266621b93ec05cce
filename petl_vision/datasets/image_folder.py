"""Your own images: one folder per class, ``data_root/<class>/*.jpg|png``, as torchvision's ``ImageFolder``.

Classes are the sub-folders of ``data_root`` that hold images, sorted by name; label ``i`` is ``classes[i]``. The
splits come from one of two places, never both:

- split files ``train.txt`` / ``val.txt`` / ``test.txt`` in ``data_root``, one image path relative to ``data_root``
  per line (``cat/0001.jpg``; the class is the first folder), used as they are;
- otherwise a seeded split of each class: its images in name order, shuffled by a generator seeded with
  ``(seed, class index)``; the first ``test_fraction`` of them (rounded) are ``test``, the next ``val_fraction``
  ``val`` and the rest ``train``. Configs set ``seed`` and the fractions once, in ``data_split``.

Each data info is ``{'img_path': str, 'gt_label': int}``; pipelines start with ``LoadImage``.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import ClassVar

import numpy as np
from mmengine.dataset import BaseDataset

from petl_vision.datasets.splits import check_disjoint_files, record_split
from petl_vision.registry import DATASETS

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
FOLDER_LAYOUT = ('  <class>/<image>.jpg|png          one folder per class\n'
                 '  train.txt, val.txt, test.txt     optional: one path per line, relative to data_root')


def _is_image(name: str) -> bool:
    return not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)


def scan_classes(root: str) -> dict[str, list[str]]:
    """``{class folder: sorted image paths relative to root}`` of every sub-folder of ``root`` that holds images."""
    if not osp.isdir(root):
        raise FileNotFoundError(f"ImageFolder: data_root='{root}' is not a folder. Expected layout:\n{FOLDER_LAYOUT}")
    found = {}
    for name in sorted(os.listdir(root)):
        folder = osp.join(root, name)
        if name.startswith('.') or not osp.isdir(folder):
            continue
        images = sorted(f'{name}/{f}' for f in os.listdir(folder) if _is_image(f))
        if images:
            found[name] = images
    if not found:
        raise FileNotFoundError(f"ImageFolder: no class folder with images ({', '.join(IMAGE_EXTENSIONS)}) in "
                                f"data_root='{root}'. Expected layout:\n{FOLDER_LAYOUT}")
    return found


def read_split_file(path: str) -> list[str]:
    """The relative image paths listed in one split file (blank lines skipped)."""
    with open(path) as f:
        return [line.strip().replace(os.sep, '/') for line in f if line.strip()]


@DATASETS.register_module()
class ImageFolder(BaseDataset):
    """Classification on ``data_root/<class>/*`` images.

    Args:
        data_root: the folder holding one sub-folder per class (and optional split files).
        split: ``'train'``, ``'val'``, ``'test'`` or ``'trainval'`` (train + val).
        seed, val_fraction, test_fraction: the seeded split, used when ``data_root`` has no split files.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).

    ``metainfo['classes']`` holds the class folder names once the data is loaded.
    """

    SPLITS: ClassVar[tuple[str, ...]] = ('train', 'val', 'test', 'trainval')
    SPLIT_FILES: ClassVar[tuple[str, ...]] = ('train.txt', 'val.txt', 'test.txt')

    def __init__(self, data_root: str, split: str = 'train', seed: int = 0, val_fraction: float = 0.2,
                 test_fraction: float = 0.0, **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"ImageFolder split must be one of {self.SPLITS}, got '{split}'")
        if min(val_fraction, test_fraction) < 0 or val_fraction + test_fraction >= 1:
            raise ValueError(f'val_fraction={val_fraction} and test_fraction={test_fraction} must be >= 0 with a sum '
                             'below 1 (the rest is train)')
        self.split, self.seed, self.val_fraction, self.test_fraction = split, seed, val_fraction, test_fraction
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = scan_classes(self.data_root)
        self._metainfo['classes'] = tuple(classes)
        label_of = {name: label for label, name in enumerate(classes)}
        parts = ('train', 'val') if self.split == 'trainval' else (self.split,)
        files = [f for f in self.SPLIT_FILES if osp.isfile(osp.join(self.data_root, f))]
        paths = self._listed(files, parts, classes) if files else self._seeded(classes, parts)
        if not paths:
            how = f'{self.split}.txt lists no image' if files else \
                f'the seeded split gives it no image (test_fraction={self.test_fraction}, ' \
                f'val_fraction={self.val_fraction})'
            raise ValueError(f"ImageFolder({self.data_root}): split '{self.split}' is empty: {how}; set "
                             'data_split.test_fraction / val_fraction or write the split file')
        return [{'img_path': osp.join(self.data_root, rel), 'gt_label': label_of[rel.split('/')[0]]} for rel in paths]

    def _listed(self, files: list[str], parts: tuple[str, ...], classes: dict[str, list[str]]) -> list[str]:
        """The paths of ``parts`` from the split files (all of them are checked to be disjoint)."""
        wanted = [f'{part}.txt' for part in parts]
        absent = [f for f in wanted if f not in files]
        if absent:
            raise FileNotFoundError(f"ImageFolder: data_root='{self.data_root}' has split files {files} but not "
                                    f'{absent}; write it, or remove the split files to use the seeded split')
        listed = {f: read_split_file(osp.join(self.data_root, f)) for f in files}
        check_disjoint_files(f'ImageFolder({self.data_root})', listed)
        paths = [rel for f in wanted for rel in listed[f]]
        missing = [rel for rel in paths
                   if rel.split('/')[0] not in classes or not osp.isfile(osp.join(self.data_root, rel))]
        if missing:
            raise FileNotFoundError(f"ImageFolder: {len(missing)} images listed in {wanted} are not in data_root="
                                    f"'{self.data_root}' (e.g. {missing[:3]}); paths are relative to data_root, "
                                    'class folder first')
        return paths

    def _seeded(self, classes: dict[str, list[str]], parts: tuple[str, ...]) -> list[str]:
        """The paths of ``parts`` under the seeded per-class split; records the split against leakage."""
        chosen = []
        for label, images in enumerate(classes.values()):
            order = np.random.default_rng((self.seed, label)).permutation(len(images))
            n_test = int(round(len(images) * self.test_fraction))
            n_val = int(round(len(images) * self.val_fraction))
            if n_test + n_val >= len(images):
                raise ValueError(f"ImageFolder: class '{images[0].split('/')[0]}' has {len(images)} images, too few "
                                 f'for val_fraction={self.val_fraction} and test_fraction={self.test_fraction} to '
                                 'leave one for training; add images or lower the fractions')
            bounds = {'test': (0, n_test), 'val': (n_test, n_test + n_val), 'train': (n_test + n_val, len(images))}
            for part in parts:
                start, stop = bounds[part]
                chosen += [images[i] for i in sorted(order[start:stop])]
        definition = {'seed': self.seed, 'val_fraction': self.val_fraction, 'test_fraction': self.test_fraction}
        record_split(self, osp.abspath(self.data_root), self.split, chosen, definition)
        return chosen
