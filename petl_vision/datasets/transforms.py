"""Image-classification transforms: callables on a sample dict wrapping ``torchvision.transforms.v2``.

A sample travelling through the pipeline is a dict::

    {'img_path': str (file datasets only), 'img': uint8 (3, H, W) tensor, 'gt_label': int}

:class:`LoadImage` turns ``img_path`` into ``img`` (in-memory datasets such as :class:`CIFAR100` hand out ``img``
already); the geometric transforms change ``img`` only; :class:`PackInputs` ends every pipeline and returns
``{'inputs': uint8 (3, H, W), 'data_samples': int label}``, which mmengine's ``default_collate`` batches into
``{'inputs': uint8 (B, 3, H, W), 'data_samples': int64 (B,)}``. Normalisation is the model's data preprocessor's job.
Randomness comes from torch's generator, which mmengine seeds and DataLoader workers re-seed per worker.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

from petl_vision.registry import TRANSFORMS

Size = int | tuple[int, int]


def _size(size: int | list[int] | tuple[int, int]) -> Size:
    return size if isinstance(size, int) else (int(size[0]), int(size[1]))


@TRANSFORMS.register_module()
class LoadImage:
    """Read ``results['img_path']`` (any format PIL opens; grey, palette and CMYK converted) into ``results['img']``,
    uint8 (3, H, W), and record ``ori_shape`` = (H, W)."""

    def __call__(self, results: dict) -> dict:
        with Image.open(results['img_path']) as image:
            rgb = np.asarray(image.convert('RGB'))  # (H, W, 3)
        results['img'] = torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()  # (3, H, W)
        results['ori_shape'] = tuple(rgb.shape[:2])
        return results


class ImageTransform:
    """Apply a torchvision v2 transform (``self.op``) to ``results['img']``, uint8 (3, H, W)."""

    op: v2.Transform

    def __call__(self, results: dict) -> dict:
        results['img'] = self.op(results['img'])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.op!r})'


@TRANSFORMS.register_module()
class Resize(ImageTransform):
    """Resize: an int ``size`` sets the shorter side (aspect kept), ``(H, W)`` sets both (as NOAH's VTAB 224 x 224).

    ``interpolation``: ``'bilinear'``, ``'bicubic'`` or ``'nearest'``; antialiased when downsampling.
    """

    def __init__(self, size: int | tuple[int, int], interpolation: str = 'bicubic') -> None:
        self.op = v2.Resize(_size(size), interpolation=InterpolationMode(interpolation), antialias=True)


@TRANSFORMS.register_module()
class RandomResizedCrop(ImageTransform):
    """Crop a random area fraction ``scale`` with aspect ratio in ``ratio``, resized to ``size``."""

    def __init__(self, size: int | tuple[int, int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = 'bicubic') -> None:
        self.op = v2.RandomResizedCrop(_size(size), scale=tuple(scale), ratio=tuple(ratio),
                                       interpolation=InterpolationMode(interpolation), antialias=True)


@TRANSFORMS.register_module()
class RandomCrop(ImageTransform):
    """Crop a random ``size`` window (VPT's FGVC recipe: shorter side to 256, bilinear; random 224 crop; flip)."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.op = v2.RandomCrop(_size(size))


@TRANSFORMS.register_module()
class CenterCrop(ImageTransform):
    """Crop the central ``size`` window."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.op = v2.CenterCrop(_size(size))


@TRANSFORMS.register_module()
class RandomFlip(ImageTransform):
    """Flip left-right with probability ``prob``."""

    def __init__(self, prob: float = 0.5) -> None:
        self.op = v2.RandomHorizontalFlip(prob)


def random_affine(x: torch.Tensor, degrees: float = 10.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1), generator: torch.Generator | None = None) -> torch.Tensor:
    """Random rotation (+-``degrees``), zoom (``scale``) and shift (+-``translate`` of the size) of a float batch
    (B, C, H, W), one draw per image, bilinear, with the border pixels repeated outside the image (so a digit's
    background stays background). The quick start's augmentation, shared with ``tools/make_demo_backbone.py``."""
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + torch.rand(b, generator=generator) * (scale[1] - scale[0])
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * 2 * translate  # grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, padding_mode='border', align_corners=False)


@TRANSFORMS.register_module()
class RandomAffine:
    """:func:`random_affine` on one uint8 image (3, H, W), drawn from torch's generator (seeded by mmengine)."""

    def __init__(self, degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1)) -> None:
        self.degrees, self.translate, self.scale = degrees, translate, tuple(scale)

    def __call__(self, results: dict) -> dict:
        img = results['img'][None].float()  # (1, 3, H, W)
        out = random_affine(img, self.degrees, self.translate, self.scale)
        results['img'] = out[0].round().clamp(0, 255).to(torch.uint8)
        return results

    def __repr__(self) -> str:
        return f'RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale})'


@TRANSFORMS.register_module()
class PackInputs:
    """End of every pipeline: ``{'inputs': img uint8 (3, H, W), 'data_samples': int(gt_label)}``, plus
    ``'task': str`` when the sample names its task (``DigitsMultiTask``; ``MultiTaskDataset`` sets it too), which
    ``default_collate`` batches into a list of names; ``ImageClassifier`` accepts a single-task batch's and ignores
    it."""

    def __call__(self, results: dict) -> dict:
        packed = {'inputs': results['img'], 'data_samples': int(results['gt_label'])}
        if 'task' in results:
            packed['task'] = str(results['task'])
        return packed
