"""VTAB-1k (Zhai et al., 2019) in the layout of NOAH's ``data/vtab-source/get_vtab1k.py`` (ZhangYuanhan-AI/NOAH).

``data_root`` is the ``vtab-1k`` folder::

    vtab-1k/<task>/images/{train800,val200,train800val200,test}/000000.jpg
    vtab-1k/<task>/{train800,val200,train800val200,test}.txt     lines 'images/train800/000000.jpg <label>'

with the 19 task folders of :data:`VTAB_TASKS`. Labels are already contiguous (``0..C-1``). Each data info is
``{'img_path': str, 'gt_label': int}``; pipelines start with ``LoadImage`` (NOAH: bicubic resize to 224 x 224,
no augmentation).
"""
from __future__ import annotations

import os.path as osp
from typing import ClassVar

from mmengine.dataset import BaseDataset

from petl_vision.datasets.layout import require_paths
from petl_vision.registry import DATASETS

# NOAH's folder name -> (group, number of classes), in the order of VTAB's tables.
VTAB_TASKS: dict[str, tuple[str, int]] = {
    'cifar': ('natural', 100),
    'caltech101': ('natural', 102),
    'dtd': ('natural', 47),
    'oxford_flowers102': ('natural', 102),
    'oxford_iiit_pet': ('natural', 37),
    'svhn': ('natural', 10),
    'sun397': ('natural', 397),
    'patch_camelyon': ('specialized', 2),
    'eurosat': ('specialized', 10),
    'resisc45': ('specialized', 45),
    'diabetic_retinopathy': ('specialized', 5),
    'clevr_count': ('structured', 8),
    'clevr_dist': ('structured', 6),
    'dmlab': ('structured', 6),
    'kitti': ('structured', 4),
    'dsprites_loc': ('structured', 16),
    'dsprites_ori': ('structured', 16),
    'smallnorb_azi': ('structured', 18),
    'smallnorb_ele': ('structured', 9),
}
VTAB_GROUPS = ('natural', 'specialized', 'structured')
# NOAH's training scripts name two folders differently from get_vtab1k.py, which writes the names above.
VTAB_SCRIPT_NAMES = {'cifar100': 'cifar', 'oxford_pet': 'oxford_iiit_pet'}
# Our split name -> NOAH's list file, and the number of lines it must have (None: the task's full test set).
VTAB_SPLIT_FILES: dict[str, str] = {'train': 'train800.txt', 'val': 'val200.txt', 'trainval': 'train800val200.txt',
                                    'test': 'test.txt'}
VTAB_SPLIT_SIZES: dict[str, int | None] = {'train': 800, 'val': 200, 'trainval': 1000, 'test': None}
VTAB_LAYOUT = ('  <task>/{train800,val200,train800val200,test}.txt   lines "images/<split>/000000.jpg <label>"\n'
               '  <task>/images/<split>/*.jpg                        (NOAH data/vtab-source/get_vtab1k.py)')


def check_vtab_task(task: str) -> tuple[str, int]:
    """``(group, num_classes)`` of a NOAH task folder name; raises with the known names for any other."""
    if task in VTAB_SCRIPT_NAMES:
        raise KeyError(f"'{task}' is what NOAH's training scripts call get_vtab1k.py's folder "
                       f"'{VTAB_SCRIPT_NAMES[task]}'; use task='{VTAB_SCRIPT_NAMES[task]}' "
                       '(rename the folder if needed)')
    if task not in VTAB_TASKS:
        raise KeyError(f"unknown VTAB-1k task '{task}'; NOAH's folder names are {list(VTAB_TASKS)}")
    return VTAB_TASKS[task]


def read_vtab_list(path: str) -> list[tuple[str, int]]:
    """One NOAH list file as ``[(image path relative to the task folder, label), ...]``."""
    with open(path) as f:
        rows = [line.rsplit(maxsplit=1) for line in f if line.strip()]
    return [(rel, int(label)) for rel, label in rows]


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """One VTAB-1k task.

    Args:
        data_root: the ``vtab-1k`` folder holding one folder per task.
        task: NOAH's folder name, a key of :data:`VTAB_TASKS` (``'cifar'``, ``'clevr_count'``, ...).
        split: ``'train'`` (train800), ``'val'`` (val200), ``'trainval'`` (train800val200, the 1,000 images the
            final VTAB-1k runs train on) or ``'test'``.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).

    ``metainfo``: ``classes`` (``'0'`` .. ``str(C - 1)``; VTAB labels have no names here), ``task`` and ``group``.
    """

    SPLITS: ClassVar[tuple[str, ...]] = tuple(VTAB_SPLIT_FILES)

    def __init__(self, data_root: str, task: str, split: str = 'train', **kwargs) -> None:
        group, num_classes = check_vtab_task(task)
        if split not in self.SPLITS:
            raise ValueError(f"VTAB1k split must be one of {self.SPLITS}, got '{split}'")
        self.task, self.split = task, split
        metainfo = {'classes': tuple(str(i) for i in range(num_classes)), 'task': task, 'group': group,
                    **(kwargs.pop('metainfo', None) or {})}
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list[dict]:
        list_file = osp.join(self.task, VTAB_SPLIT_FILES[self.split])
        require_paths(f'VTAB1k({self.task})', self.data_root, (list_file,), VTAB_LAYOUT, 'vtab')
        rows = read_vtab_list(osp.join(self.data_root, list_file))
        num_classes = len(self.metainfo['classes'])
        bad = [(rel, label) for rel, label in rows if not 0 <= label < num_classes]
        if bad:
            raise ValueError(f'{list_file} has labels outside 0..{num_classes - 1} (e.g. {bad[:3]}): is '
                             f"'{self.task}' the right folder? Check it with `python tools/prepare_data.py vtab "
                             f'--root {self.data_root}`.')
        task_root = osp.join(self.data_root, self.task)
        return [{'img_path': osp.join(task_root, rel), 'gt_label': label} for rel, label in rows]
