"""ImageNet-R (Hendrycks et al. 2021): 30,000 renditions (art, cartoons, sketches, ...) of 200 ImageNet classes,
the class-incremental benchmark of DualPrompt, CODA-Prompt and InfLoRA (10 tasks x 20 classes).

Layout, as the archive ``imagenet-r.tar`` extracts (``data_root`` holds the ``imagenet-r`` folder)::

    imagenet-r/<wnid>/<image>.jpg      one folder per class, named by its WordNet id (n01443537, ...)

There are no official splits; the continual-learning papers draw 80% train / 20% test. Ours is
:class:`~petl_vision.datasets.ImageFolder`'s seeded split of each class (stratified: every class keeps 20% of its
images for ``test``, drawn with ``(seed, class index)``), recorded against leakage like every held-out split.
CODA-Prompt's split is a random 80/20 of the whole set, not per class, so its test images differ from ours.
"""
from __future__ import annotations

import os.path as osp

from petl_vision.datasets.image_folder import ImageFolder, scan_classes
from petl_vision.registry import DATASETS

IMAGENET_R_URL = 'https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar'
IMAGENET_R_LAYOUT = '  imagenet-r/<wnid>/<image>.jpg      200 class folders (n01443537, ...)'
NUM_CLASSES = 200


@DATASETS.register_module()
class ImageNetR(ImageFolder):
    """ImageNet-R with a seeded 80/20 train/test split of each class.

    Args:
        data_root: the folder holding ``imagenet-r/``.
        split: ``'train'`` or ``'test'``.
        seed: the split's seed (the same for every loader of a run).
        test_fraction: share of each class held out for ``test`` (0.2, as the papers).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ...).

    ``metainfo['classes']`` holds the wnids; label ``i`` is the ``i``-th wnid in sorted order.
    """

    def __init__(self, data_root: str, split: str = 'train', seed: int = 0, test_fraction: float = 0.2,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"ImageNetR split must be 'train' or 'test' (80/20 of each class), got {split!r}")
        self.images_root = osp.join(data_root, 'imagenet-r')
        super().__init__(data_root=data_root, split=split, seed=seed, val_fraction=0.0, test_fraction=test_fraction,
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        if not osp.isdir(self.images_root):
            raise FileNotFoundError(
                f"ImageNetR: imagenet-r/ not found in data_root='{self.data_root}'. Expected layout:\n"
                f'{IMAGENET_R_LAYOUT}\nDownload {IMAGENET_R_URL} and extract it into data_root '
                f"(`tar xf imagenet-r.tar -C {self.data_root or 'DIR'}`).")
        classes = scan_classes(self.images_root)
        self._metainfo['classes'] = tuple(classes)
        label_of = {name: label for label, name in enumerate(classes)}
        paths = self._seeded(classes, (self.split,))
        return [{'img_path': osp.join(self.images_root, rel), 'gt_label': label_of[rel.split('/')[0]]}
                for rel in paths]
