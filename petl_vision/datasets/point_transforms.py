"""Point-cloud augmentations of Point-MAE / DAPT as pipeline transforms on ``results['inputs']`` (N, 3) float.

Point-MAE and DAPT apply them to the whole batch on the GPU with numpy's generator; here they run per sample in
the dataset pipeline (callables ``results -> results``, as mmengine's ``Compose`` expects) with torch's generator,
which mmengine seeds and DataLoader workers re-seed per worker. The distributions are theirs: one draw per sample.
"""
from __future__ import annotations

import math

import torch

from petl_vision.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PointsScaleTranslate:
    """``x * s + t`` with per-axis ``s ~ U(scale_low, scale_high)`` and ``t ~ U(-translate_range, translate_range)``.

    Point-MAE's ``PointcloudScaleAndTranslate`` (2/3, 3/2, 0.2): the training augmentation of its and DAPT's
    fine-tuning on ModelNet40 and ScanObjectNN.
    """

    def __init__(self, scale_low: float = 2 / 3, scale_high: float = 3 / 2, translate_range: float = 0.2):
        if not 0 < scale_low <= scale_high:
            raise ValueError(f'PointsScaleTranslate needs 0 < scale_low <= scale_high, got {scale_low}, {scale_high}')
        self.scale_low, self.scale_high, self.translate_range = scale_low, scale_high, translate_range

    def __call__(self, results: dict) -> dict:
        pts = results['inputs']
        scale = torch.empty(3).uniform_(self.scale_low, self.scale_high).to(pts)  # (3,)
        shift = torch.empty(3).uniform_(-self.translate_range, self.translate_range).to(pts)  # (3,)
        results['inputs'] = pts * scale + shift
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale_low={self.scale_low}, scale_high={self.scale_high}, '
                f'translate_range={self.translate_range})')


@TRANSFORMS.register_module()
class PointsRotate:
    """Rotation by an angle ``~ U(0, 2 pi)`` around the up axis (``y`` in ScanObjectNN / ModelNet as Point-MAE reads
    them): Point-MAE's ``PointcloudRotate``, used for the PB_T50_RS (hardest) ScanObjectNN variant.

    Args:
        axis: the up axis, 0 (x), 1 (y) or 2 (z).
    """

    def __init__(self, axis: int = 1):
        if axis not in (0, 1, 2):
            raise ValueError(f'PointsRotate axis must be 0 (x), 1 (y) or 2 (z), got {axis}')
        self.axis = axis

    def __call__(self, results: dict) -> dict:
        pts = results['inputs']
        angle = float(torch.rand(())) * 2 * math.pi
        results['inputs'] = pts @ rotation_matrix(angle, self.axis).to(pts)  # (N, 3) rows times R
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(axis={self.axis})'


def rotation_matrix(angle: float, axis: int) -> torch.Tensor:
    """The right-handed (3, 3) rotation by ``angle`` about ``axis``; for ``axis=1`` Point-MAE's
    ``[[c, 0, s], [0, 1, 0], [-s, 0, c]]``. Like Point-MAE we multiply row-vector points, ``points @ R``."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    R = torch.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


@TRANSFORMS.register_module()
class PointsSample:
    """A random subset of ``num_points`` of the N points, without replacement, in random order.

    With ``num_points = N`` it shuffles (Point-MAE shuffles ScanObjectNN's 2048 training points). ModelNet40's
    training recipe, 1,024 points drawn at random from the first 1,200 of the FPS-ordered cloud, is
    ``ModelNet40(npoints=1200)`` followed by ``PointsSample(1024)``.
    """

    def __init__(self, num_points: int):
        if num_points < 1:
            raise ValueError(f'PointsSample num_points must be >= 1, got {num_points}')
        self.num_points = num_points

    def __call__(self, results: dict) -> dict:
        pts = results['inputs']
        if self.num_points > pts.shape[0]:
            raise ValueError(f'PointsSample(num_points={self.num_points}) got a cloud of {pts.shape[0]} points; '
                             'ask for at most as many points as the dataset gives (its npoints)')
        results['inputs'] = pts[torch.randperm(pts.shape[0])[:self.num_points]]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_points={self.num_points})'
