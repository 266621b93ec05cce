"""Joint transforms for multi-task dense prediction: the image and every label map move together.

A sample travelling through the pipeline is a dict::

    {'img': uint8 (3, H, W), 'gt': {task: label map}, 'img_id': str, ...}

with label maps laid out by the kind of their task (:data:`TASK_KINDS`):

- ``'label'`` (semseg, human_parts, sal): int64 ``(H, W)``, class indices, ``IGNORE_INDEX`` = 255 where unlabelled.
- ``'normals'``: float32 ``(3, H, W)`` unit vectors (x right, y, z), the zero vector where there is no label.
- ``'depth'``: float32 ``(1, H, W)`` metres, 0 where there is no label.

Interpolation follows the kind: bilinear for the image and normals (renormalised to unit length afterwards),
nearest for class labels and for depth (so that holes, depth 0, never blend into valid depths). Randomness comes
from torch's generator, which mmengine seeds and DataLoader workers re-seed per worker.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from petl_vision.registry import TRANSFORMS

IGNORE_INDEX = 255
TASK_KINDS: dict[str, str] = {
    'semseg': 'label',
    'human_parts': 'label',
    'sal': 'label',
    'normals': 'normals',
    'depth': 'depth',
}
# Value written where a label map is padded: "no label" in each kind's own convention.
PAD_VALUES: dict[str, float] = {'label': IGNORE_INDEX, 'normals': 0.0, 'depth': 0.0}

Size = tuple[int, int]


def task_kind(task: str) -> str:
    """Kind (``'label'``, ``'normals'`` or ``'depth'``) of a dense task; raises for an unknown task name."""
    if task not in TASK_KINDS:
        raise KeyError(f"unknown dense task '{task}'; known tasks: {sorted(TASK_KINDS)}. "
                       'Add it to petl_vision.datasets.dense_transforms.TASK_KINDS with its kind.')
    return TASK_KINDS[task]


def _as_size(size: int | Size) -> Size:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize_map(x: torch.Tensor, kind: str, size: Size) -> torch.Tensor:
    """Resize one map to ``size`` = (H, W).

    Args:
        x: ``'image'`` uint8 (3, h, w); ``'label'`` int64 (h, w); ``'normals'`` (3, h, w); ``'depth'`` (1, h, w).
        kind: ``'image'`` or a task kind.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if kind == 'label':
        out = F.interpolate(x[None, None].float(), size=size, mode='nearest-exact')  # (1, 1, H, W)
        return out[0, 0].to(x.dtype)
    if kind == 'depth':
        return F.interpolate(x[None], size=size, mode='nearest-exact')[0]
    out = F.interpolate(x[None].float(), size=size, mode='bilinear', align_corners=False, antialias=True)[0]
    if kind == 'image':
        return out.round().clamp(0, 255).to(torch.uint8)
    norm = out.norm(dim=0, keepdim=True)  # (1, H, W)
    return torch.where(norm > 1e-6, out / norm.clamp_min(1e-6), torch.zeros_like(out))


def resize_sample(results: dict, size: Size) -> dict:
    """Resize the image and every label map of a sample to ``size`` = (H, W)."""
    gt = {task: resize_map(x, task_kind(task), size) for task, x in results['gt'].items()}
    return {**results, 'img': resize_map(results['img'], 'image', size), 'gt': gt}


def pad_sample(results: dict, size: Size) -> dict:
    """Pad a sample at the bottom and right to at least ``size`` = (H, W): image with 0, labels with their
    "no label" value (:data:`PAD_VALUES`). Sides already at least as large are left unchanged."""
    h, w = results['img'].shape[-2:]
    pad = (0, max(size[1] - w, 0), 0, max(size[0] - h, 0))  # (left, right, top, bottom)
    if pad == (0, 0, 0, 0):
        return results
    gt = {task: F.pad(x, pad, value=PAD_VALUES[task_kind(task)]) for task, x in results['gt'].items()}
    return {**results, 'img': F.pad(results['img'], pad, value=0), 'gt': gt}


def crop_sample(results: dict, top: int, left: int, size: Size) -> dict:
    """Crop the window ``[top:top + H, left:left + W]`` out of the image and every label map."""
    rows, cols = slice(top, top + size[0]), slice(left, left + size[1])
    gt = {task: x[..., rows, cols] for task, x in results['gt'].items()}
    return {**results, 'img': results['img'][..., rows, cols], 'gt': gt}


def hflip_sample(results: dict) -> dict:
    """Mirror a sample left-right. Normals point the other way along x after a mirror, so their x is negated."""
    gt = {}
    for task, x in results['gt'].items():
        x = x.flip(-1)
        if task_kind(task) == 'normals':
            x = torch.cat([-x[:1], x[1:]])
        gt[task] = x
    return {**results, 'img': results['img'].flip(-1), 'gt': gt}


@TRANSFORMS.register_module()
class DenseResize:
    """Resize the image and all label maps to a fixed ``size`` (int or (H, W)), ignoring the aspect ratio, as the
    PASCAL-Context / NYUD multi-task benchmarks do (MTLoRA resizes to 448 x 448)."""

    def __init__(self, size: int | Size) -> None:
        self.size = _as_size(size)

    def __call__(self, results: dict) -> dict:
        return resize_sample(results, self.size)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size})'


@TRANSFORMS.register_module()
class DenseRandomScaleCrop:
    """Rescale by a factor drawn uniformly from ``scale_range``, pad up to ``crop_size`` where smaller, then crop
    a random ``crop_size`` window.

    Args:
        crop_size: output (H, W) (or one int for a square).
        scale_range: (min, max) of the rescaling factor.
        rescale_depth: divide depth by the factor, as ASTMT does: enlarging the image is moving the camera closer.
    """

    def __init__(self, crop_size: int | Size, scale_range: tuple[float, float] = (0.75, 1.25),
                 rescale_depth: bool = True) -> None:
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f'scale_range must be (min, max) with 0 < min <= max, got {scale_range}')
        self.crop_size = _as_size(crop_size)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.rescale_depth = rescale_depth

    def __call__(self, results: dict) -> dict:
        low, high = self.scale_range
        scale = low + (high - low) * torch.rand(()).item()
        h, w = results['img'].shape[-2:]
        results = resize_sample(results, (max(round(h * scale), 1), max(round(w * scale), 1)))
        if self.rescale_depth and 'depth' in results['gt']:
            results['gt']['depth'] = results['gt']['depth'] / scale
        results = pad_sample(results, self.crop_size)
        h, w = results['img'].shape[-2:]
        top = int(torch.randint(h - self.crop_size[0] + 1, ()))
        left = int(torch.randint(w - self.crop_size[1] + 1, ()))
        return crop_sample(results, top, left, self.crop_size)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size}, scale_range={self.scale_range})'


@TRANSFORMS.register_module()
class DenseRandomHorizontalFlip:
    """Mirror the image and all label maps left-right with probability ``prob``; normals' x is negated."""

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def __call__(self, results: dict) -> dict:
        return hflip_sample(results) if torch.rand(()).item() < self.prob else results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class DensePad:
    """Pad at the bottom and right to exactly ``size`` (int or (H, W)): image with 0, class labels with 255,
    normals and depth with 0 (their "no label" value). Raises if the sample is already larger."""

    def __init__(self, size: int | Size) -> None:
        self.size = _as_size(size)

    def __call__(self, results: dict) -> dict:
        h, w = results['img'].shape[-2:]
        if h > self.size[0] or w > self.size[1]:
            raise ValueError(f"sample '{results.get('img_id', '?')}' is {h}x{w}, larger than the pad size "
                             f'{self.size[0]}x{self.size[1]}; resize or crop it first (DenseResize, '
                             'DenseRandomScaleCrop) or pad to a larger size.')
        return pad_sample(results, self.size)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size})'
