"""``DigitsInDomain``: every digits image of a split seen in one domain, for a class-incremental digits sequence.

:class:`~petl_vision.datasets.DigitsMultiTask` deals the images of a split over the ten domains (about 110 train and
50 test images per domain); a class-incremental sequence on one domain needs more of each class, so this dataset
shows every image of the split (train: the 1,097 pretraining images; val: 200 and test: 500 held-out ones, the
members of all ten domains under ``seed``) in the one ``domain`` (e.g. ``rotated_90``). Labels are the digits.
"""
from __future__ import annotations

import numpy as np

from petl_vision.datasets.array_dataset import ArrayImageDataset
from petl_vision.datasets.digits import digits_arrays
from petl_vision.datasets.digits_multitask import DOMAINS, IMG_SIZE, SPLITS, domain_images, split_members
from petl_vision.registry import DATASETS


@DATASETS.register_module()
class DigitsInDomain(ArrayImageDataset):
    """All digits of ``split`` (``'train'``, ``'val'``, ``'test'``) in ``domain``, labels 0..9, sorted by source
    index."""

    def __init__(self, domain: str = 'rotated_90', split: str = 'train', seed: int = 0, **kwargs) -> None:
        if domain not in DOMAINS or split not in SPLITS:
            raise ValueError(f'DigitsInDomain needs a domain of {DOMAINS} and a split of {SPLITS}; got {domain!r}, '
                             f'{split!r}')
        self.domain, self.split, self.seed = domain, split, seed
        kwargs.setdefault('serialize_data', False)
        super().__init__(metainfo={'classes': tuple(str(d) for d in range(10)), **(kwargs.pop('metainfo', None) or {})},
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        members = split_members(self.seed)
        idx = np.sort(np.concatenate([members[d, self.split, digit] for d in DOMAINS for digit in range(10)]))
        labels = digits_arrays(IMG_SIZE)[1]
        images = domain_images(self.domain, idx)
        return [{'img': img, 'gt_label': int(labels[i]), 'source_idx': int(i)} for img, i in zip(images, idx)]
