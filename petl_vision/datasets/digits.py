"""scikit-learn's bundled handwritten digits (1,797 images of 8 x 8, values 0..16, about 180 per digit).

The quick-start data: it ships with scikit-learn, so nothing is downloaded. Images are scaled to 0..255,
upsampled bilinearly to ``img_size`` and repeated over 3 channels. Each data info is
``{'img': uint8 (3, img_size, img_size), 'gt_label': int, 'source_idx': index in load_digits()}`` (see
:mod:`.array_dataset`).

Splits are made per digit from a generator seeded with ``(seed, digit)``: the digit's images are shuffled, the
first ``test_fraction`` of them form ``test``, the next ``val_fraction`` form ``val`` and the rest ``train``. So a
digit's split does not depend on which other digits are chosen, and ``shots_per_class`` (the first ``n`` train
images of each digit) gives nested few-shot sets: the 5-shot set is inside the 10-shot set.
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from petl_vision.datasets.array_dataset import ArrayImageDataset
from petl_vision.datasets.splits import record_split
from petl_vision.registry import DATASETS


@functools.lru_cache(maxsize=2)
def digits_arrays(img_size: int) -> tuple[np.ndarray, np.ndarray]:
    """All digits as uint8 ``(N, 3, img_size, img_size)`` images and int64 ``(N,)`` labels (cached, read-only)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images / 16.0).float()[:, None]  # (N, 1, 8, 8) in [0, 1]
    big = F.interpolate(small, size=(img_size, img_size), mode='bilinear', align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)  # (N, 3, S, S)
    arrays = np.ascontiguousarray(images.numpy()), digits.target.astype(np.int64)
    for array in arrays:
        array.setflags(write=False)
    return arrays


@DATASETS.register_module()
class SklearnDigits(ArrayImageDataset):
    """Digits classification, optionally on a subset of digits and with few shots.

    Args:
        split: ``'train'``, ``'val'`` or ``'test'``.
        classes: the digits to keep; label ``i`` is digit ``classes[i]`` (all ten, in order, by default).
        shots_per_class: keep only the first ``n`` train images of each digit (``train`` split only).
        img_size: side of the upsampled images.
        seed: seed of the split.
        val_fraction, test_fraction: shares of each digit's images in ``val`` and ``test`` (rounded down).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...);
            ``serialize_data`` defaults to False here.
    """

    SPLITS: ClassVar[tuple[str, ...]] = ('train', 'val', 'test')

    def __init__(self, split: str = 'train', classes: Sequence[int] | None = None, shots_per_class: int | None = None,
                 img_size: int = 32, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.3,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"SklearnDigits split must be one of {self.SPLITS}, got '{split}'")
        self.digits = tuple(range(10)) if classes is None else tuple(int(c) for c in classes)
        if len(set(self.digits)) != len(self.digits) or not set(self.digits) <= set(range(10)):
            raise ValueError(f'classes must be distinct digits 0..9, got {classes}')
        if shots_per_class is not None and split != 'train':
            raise ValueError(f"shots_per_class limits the 'train' split only; got split='{split}'")
        self.split, self.shots_per_class, self.img_size, self.seed = split, shots_per_class, img_size, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        metainfo = {'classes': tuple(str(d) for d in self.digits), **(kwargs.pop('metainfo', None) or {})}
        kwargs.setdefault('serialize_data', False)  # under 6 MB: serialising buys nothing and costs a gc pass
        super().__init__(metainfo=metainfo, **kwargs)

    def _split_indices(self, labels: np.ndarray, digit: int) -> np.ndarray:
        idx = np.random.default_rng((self.seed, digit)).permutation(np.flatnonzero(labels == digit))
        n_test, n_val = int(len(idx) * self.test_fraction), int(len(idx) * self.val_fraction)
        parts = {'test': idx[:n_test], 'val': idx[n_test:n_test + n_val], 'train': idx[n_test + n_val:]}
        chosen = parts[self.split]
        if self.shots_per_class is not None:
            if self.shots_per_class > len(chosen):
                raise ValueError(f'digit {digit} has {len(chosen)} train images, fewer than '
                                 f'shots_per_class={self.shots_per_class}')
            chosen = chosen[:self.shots_per_class]
        return chosen

    def load_data_list(self) -> list[dict]:
        images, labels = digits_arrays(self.img_size)
        infos = [{'img': images[i], 'gt_label': label, 'source_idx': int(i)}
                 for label, digit in enumerate(self.digits) for i in self._split_indices(labels, digit)]
        definition = {'seed': self.seed, 'val_fraction': self.val_fraction, 'test_fraction': self.test_fraction}
        record_split(self, 'sklearn.datasets.load_digits', self.split, [d['source_idx'] for d in infos], definition)
        return infos


@DATASETS.register_module()
class DigitsShiftTarget(ArrayImageDataset):
    """The quick start's target task (:func:`petl_vision.demo.target_task_arrays`): the ten digits held out of the
    demo backbone's pretraining, rotated by 30 degrees; ``train`` has ``shots`` images per class and ``val`` 10
    (drawn with ``seed``), ``test`` 40 fixed images per class. Images are uint8 (3, 32, 32).

    Args:
        split: ``'train'``, ``'val'`` or ``'test'``.
        shots: training images per class (1..20).
        seed: seed of the train/val draw (``test`` is fixed).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self, split: str = 'train', shots: int = 20, seed: int = 0, **kwargs) -> None:
        from petl_vision.demo import NUM_CLASSES, SPLITS

        if split not in SPLITS:
            raise ValueError(f"DigitsShiftTarget split must be one of {SPLITS}, got '{split}'")
        self.split, self.shots, self.seed = split, shots, seed
        metainfo = {'classes': tuple(str(d) for d in range(NUM_CLASSES)), **(kwargs.pop('metainfo', None) or {})}
        kwargs.setdefault('serialize_data', False)
        super().__init__(metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list[dict]:
        from petl_vision.demo import target_task_arrays

        images, labels = target_task_arrays(self.split, seed=self.seed, shots=self.shots)
        # the pool has no two equal images: an image's bytes identify it
        members = [hashlib.sha1(img.tobytes()).hexdigest() for img in images]
        definition = {'seed': self.seed} if self.split != 'test' else {}
        record_split(self, 'petl_vision.demo.target_task_arrays', self.split, members, definition)
        return [{'img': img, 'gt_label': int(label)} for img, label in zip(images, labels)]
