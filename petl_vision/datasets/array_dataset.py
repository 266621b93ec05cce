"""Base of the datasets held in memory as image arrays (CIFAR-100, scikit-learn digits)."""
from __future__ import annotations

import torch
from mmengine.dataset import BaseDataset


class ArrayImageDataset(BaseDataset):
    """Data infos are ``{'img': uint8 ndarray (3, H, W), 'gt_label': int}``; :meth:`get_data_info` hands ``img`` to
    the pipeline as a uint8 tensor (3, H, W), so pipelines start after ``LoadImage``."""

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['img'] = torch.from_numpy(info['img'])
        return info
