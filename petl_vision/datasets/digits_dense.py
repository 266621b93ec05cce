"""``DigitsDenseMT``: the dense multi-task demo, four label maps derived from the quick start's rotated digits.

The images are the quick start's target task (:func:`petl_vision.demo.target_task_arrays`): the 700 digits held
out of the demo backbones' pretraining, rotated 30 degrees, uint8 (3, 32, 32), with its splits (``train``:
``shots`` per class drawn with ``seed``; ``val``: 10 per class drawn with ``seed``; ``test``: 40 fixed per class).

Each image's grey level ``I`` in [0, 1] is read as an orthographic top view of a relief: digit ``d`` is embossed
``relief(d) = 0.5 + 0.1 d`` metres high (:func:`relief_height`), so its height field is ``h = relief(d) * g``
with ``g`` = ``I`` smoothed by a Gaussian of :data:`SMOOTH_SIGMA` pixels, one pixel :data:`PIXEL_PITCH` metres
wide. Depth and normals therefore need the digit recognised, as semseg does (with a relief of one height for
every digit they are local functions of the grey level, which any frozen backbone's decoder learns):

- ``sal``: the foreground ``I > 0.5``, int64 (H, W) 0 / 1;
- ``semseg``: 11 classes, int64 (H, W): 0 background, ``1 + digit`` on the foreground (so foreground == sal);
- ``depth``: float32 (1, H, W), ``2 - h`` metres: the background plane 2 m away, strokes 0.5 to 1.4 m closer;
- ``normals``: float32 (3, H, W), unit normals of the relief in camera axes **x right, y up, z towards the viewer**:
  ``n ~ (-dh/dx, -dh/dy, 1)``, with central differences (edges replicated); the background is ``(0, 0, 1)``.
  Mirroring the image left-right mirrors every map and negates ``n_x``, as ``DenseRandomHorizontalFlip`` does.

No map has unlabelled pixels. Samples go through the joint pipeline of :mod:`.dense_transforms` and come out as
those of :class:`~petl_vision.datasets.dense_multitask.DenseMultiTaskDataset`:
``{'inputs': uint8 (3, H, W), 'data_samples': {task: label map}}``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from petl_vision.datasets.dense_multitask import DenseSamples
from petl_vision.registry import DATASETS

TASKS = ('semseg', 'sal', 'normals', 'depth')
SEMSEG_CLASSES = ('background', *(str(d) for d in range(10)))
FOREGROUND_THRESHOLD = 0.5
SMOOTH_SIGMA = 1.0  # pixels
PIXEL_PITCH = 0.25  # metres per pixel: a stroke (h = 1 m) rising over ~4 px tilts normals by up to ~45 degrees
FAR_DEPTH = 2.0  # metres, the background plane


def relief_height(digits: torch.Tensor) -> torch.Tensor:
    """Embossing height in metres of each digit (N,) -> float32 (N,): 0.5 m for 0 up to 1.4 m for 9."""
    return 0.5 + 0.1 * digits.float()


def height_field(images: torch.Tensor) -> torch.Tensor:
    """uint8 grey images (N, 3, H, W) (channel 0 is read) -> smoothed grey level float32 (N, H, W) in [0, 1]."""
    radius = math.ceil(3 * SMOOTH_SIGMA)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x.square() / (2 * SMOOTH_SIGMA ** 2))
    kernel = kernel / kernel.sum()
    grey = images[:, :1].float() / 255  # (N, 1, H, W)
    h = F.pad(grey, (radius,) * 4, mode='replicate')  # symmetric padding: smoothing commutes with mirroring
    h = F.conv2d(h, kernel.view(1, 1, 1, -1))  # rows
    h = F.conv2d(h, kernel.view(1, 1, -1, 1))  # columns
    return h[:, 0]


def normals_from_height(h: torch.Tensor, pitch: float = PIXEL_PITCH) -> torch.Tensor:
    """Unit normals float32 (N, 3, H, W) (x right, y up, z towards the viewer) of height fields ``h`` (N, H, W) in
    metres sampled every ``pitch`` metres; central differences, edges replicated."""
    p = F.pad(h[:, None], (1, 1, 1, 1), mode='replicate')[:, 0]  # (N, H + 2, W + 2)
    dh_dcol = (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) / (2 * pitch)  # along x (right)
    dh_drow = (p[:, 2:, 1:-1] - p[:, :-2, 1:-1]) / (2 * pitch)  # along -y (rows go down)
    n = torch.stack([-dh_dcol, dh_drow, torch.ones_like(h)], dim=1)  # (N, 3, H, W)
    return n / n.norm(dim=1, keepdim=True)


def dense_labels(images: torch.Tensor, digits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Label maps of every task for uint8 images (N, 3, H, W) of ``digits`` (N,): ``semseg``, ``sal`` int64
    (N, H, W); ``normals`` float32 (N, 3, H, W); ``depth`` float32 (N, 1, H, W)."""
    fg = images[:, 0].float() / 255 > FOREGROUND_THRESHOLD  # (N, H, W)
    h = height_field(images) * relief_height(digits).view(-1, 1, 1)  # (N, H, W) metres
    return {'semseg': torch.where(fg, 1 + digits.view(-1, 1, 1), 0).long(), 'sal': fg.long(),
            'normals': normals_from_height(h), 'depth': (FAR_DEPTH - h)[:, None]}


@functools.lru_cache(maxsize=4)
def digits_dense_arrays(split: str, seed: int, shots: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Images uint8 (N, 3, 32, 32), digits int64 (N,) and :func:`dense_labels` of one split (cached, read-only)."""
    from petl_vision.demo import target_task_arrays

    images, digits = target_task_arrays(split, seed=seed, shots=shots)
    labels = {t: v.numpy() for t, v in dense_labels(torch.from_numpy(images), torch.from_numpy(digits)).items()}
    for array in (images, digits, *labels.values()):
        array.setflags(write=False)
    return images, digits, labels


@DATASETS.register_module()
class DigitsDenseMT(DenseSamples):
    """The dense multi-task demo on the rotated held-out digits (see the module docstring for the label maps).

    Args:
        split: ``'train'``, ``'val'`` or ``'test'``.
        tasks: subset of ``('semseg', 'sal', 'normals', 'depth')``; all by default.
        shots: training images per class (1..20; ``train`` only, ``val`` and ``test`` have 10 and 40 per class).
        seed: seed of the train / val draw (``test`` is fixed).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ...);
            ``serialize_data`` defaults to False here.
    """

    TASKS: ClassVar[tuple[str, ...]] = TASKS
    METAINFO: ClassVar[dict] = {'tasks': TASKS, 'semseg_classes': SEMSEG_CLASSES}

    def __init__(self, split: str = 'train', tasks: Sequence[str] | None = None, shots: int = 20, seed: int = 0,
                 **kwargs) -> None:
        from petl_vision.demo import MAX_SHOTS, SPLITS

        if split not in SPLITS:
            raise ValueError(f"DigitsDenseMT split must be one of {SPLITS}, got '{split}'")
        self.tasks = self.select_tasks(tasks)
        if not 1 <= shots <= MAX_SHOTS:
            raise ValueError(f'DigitsDenseMT: shots={shots} is out of range; use 1..{MAX_SHOTS} training images '
                             'per class')
        self.split, self.shots, self.seed = split, shots, seed
        kwargs.setdefault('serialize_data', False)  # about 6 MB of arrays: serialising buys nothing
        super().__init__(**kwargs)

    def load_data_list(self) -> list[dict]:
        images, digits, labels = digits_dense_arrays(self.split, self.seed, self.shots)
        return [{'img_id': f'{self.split}_{i:03d}', 'img': images[i], 'gt_label': int(digits[i]),
                 'gt': {t: labels[t][i] for t in self.tasks}} for i in range(len(images))]

    def load_sample(self, idx: int) -> dict:
        """Image and label maps of sample ``idx`` before the pipeline: ``{'img', 'gt', 'img_id', 'ori_shape'}``."""
        info = self.get_data_info(idx)  # a copy: the pipeline may write to it
        img = torch.from_numpy(info['img'])
        gt = {t: torch.from_numpy(v) for t, v in info['gt'].items()}
        return {'img': img, 'gt': gt, 'img_id': info['img_id'], 'ori_shape': tuple(img.shape[-2:])}
