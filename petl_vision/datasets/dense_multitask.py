"""PASCAL-Context and NYUD-v2 multi-task dense prediction, in the folders ASTMT / MTI-Net / MTLoRA distribute.

Both datasets read the already-extracted archives (``PASCAL_MT.tgz``, ``NYUD_MT.tgz``; see
``docs/dense_multitask.md`` for the layouts) and return, after the pipeline::

    {'inputs': uint8 (3, H, W), 'data_samples': {task: label map}}

with label maps laid out as in :mod:`petl_vision.datasets.dense_transforms` (class labels int64 (H, W) with 255
ignored, normals float32 (3, H, W) with the zero vector unlabelled, depth float32 (1, H, W) with 0 unlabelled).
Label maps whose size differs from the image's are resized to it on loading, as MTLoRA does.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import scipy.io
import torch
from mmengine.dataset import BaseDataset
from PIL import Image

from petl_vision.datasets.dense_transforms import IGNORE_INDEX, resize_map, task_kind
from petl_vision.registry import DATASETS

PASCAL_MT_URL = 'https://data.vision.ee.ethz.ch/kmaninis/share/MTL/PASCAL_MT.tgz'
NYUD_MT_URL = 'https://drive.google.com/file/d/14EAEMXmd3zs2hIMY63UhHPSFPDAkiTzw (NYUD_MT.tgz, MTI-Net / MTLoRA)'

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
HUMAN_PART_CLASSES = ('background', 'head', 'torso', 'uarm', 'larm', 'uleg', 'lleg')
# PASCAL-Part part names of a person -> the 6 coarse parts above (the ASTMT / MTLoRA 6-part grouping).
HUMAN_PART_IDS = {
    **dict.fromkeys(('hair', 'head', 'lear', 'lebrow', 'leye', 'mouth', 'nose', 'rear', 'rebrow', 'reye'), 1),
    **dict.fromkeys(('neck', 'torso'), 2),
    **dict.fromkeys(('luarm', 'ruarm'), 3),
    **dict.fromkeys(('lhand', 'llarm', 'rhand', 'rlarm'), 4),
    **dict.fromkeys(('luleg', 'ruleg'), 5),
    **dict.fromkeys(('lfoot', 'llleg', 'rfoot', 'rlleg'), 6),
}
VOC_PERSON = 15
# PASCAL-Context (459-class LabelMap) ids whose class also exists in NYUD-v2, plus tvmonitor: the only pixels on
# which the distilled normals are trusted (ASTMT / MTLoRA intersect data/db_info/{nyu,context}_classes.json).
NORMALS_VALID_CONTEXT_CLASSES = frozenset((
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30, 33, 34, 36, 37, 38, 39, 41, 43, 46, 49, 50, 51, 53, 55, 56,
    59, 61, 62, 65, 66, 68, 69, 72, 73, 78, 83, 84, 85, 87, 88, 95, 96, 101, 104, 105, 107, 111, 113, 115, 122,
    124, 135, 141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172, 174, 181, 183, 184, 191, 193, 195, 197, 199,
    202, 213, 215, 216, 219, 220, 223, 225, 228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251, 252, 255, 260,
    261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286, 287, 288, 290, 291, 292, 293, 295, 304, 307, 309, 310,
    314, 315, 319, 323, 329, 330, 331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368, 370, 371, 374, 379, 380,
    383, 384, 397, 401, 403, 405, 407, 408, 411, 412, 413, 414, 417, 419, 421, 423, 427, 429, 430, 432, 440, 441,
    442, 443, 444, 446, 454, 457))
NYUD_CLASSES = ('wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window', 'bookshelf', 'picture',
                'counter', 'blinds', 'desk', 'shelves', 'curtain', 'dresser', 'pillow', 'mirror', 'floor mat',
                'clothes', 'ceiling', 'books', 'refridgerator', 'television', 'paper', 'towel', 'shower curtain',
                'box', 'whiteboard', 'person', 'night stand', 'toilet', 'sink', 'lamp', 'bathtub', 'bag',
                'otherstructure', 'otherfurniture', 'otherprop')


def load_rgb(path: str) -> torch.Tensor:
    """An image file as uint8 (3, H, W)."""
    return torch.from_numpy(np.array(Image.open(path).convert('RGB'))).permute(2, 0, 1).contiguous()


def load_png(path: str) -> np.ndarray:
    """A png as stored (palette indices for palette pngs): (H, W) or (H, W, C)."""
    return np.array(Image.open(path))


def normals_to_tensor(normals: np.ndarray) -> torch.Tensor:
    """(H, W, 3) normals -> float32 (3, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(normals, dtype=np.float32)).permute(2, 0, 1).contiguous()


class DenseSamples(BaseDataset):
    """What every multi-task dense dataset shares: its task subset of ``TASKS`` (checked) and the packing of a
    sample from :meth:`load_sample` (``{'img', 'gt', ...}``) through the joint pipeline into
    ``{'inputs': uint8 (3, H, W), 'data_samples': {task: label map}}``."""

    TASKS: ClassVar[tuple[str, ...]] = ()

    def select_tasks(self, tasks: Sequence[str] | None) -> tuple[str, ...]:
        """``tasks`` (all of ``TASKS`` when None), refused when empty or unknown."""
        chosen = tuple(self.TASKS if tasks is None else tasks)
        unknown = sorted(set(chosen) - set(self.TASKS))
        if unknown or not chosen:
            raise ValueError(f'{type(self).__name__} has tasks {list(self.TASKS)}; got {list(chosen)}'
                             + (f' (unknown: {unknown})' if unknown else ''))
        return chosen

    def load_sample(self, idx: int) -> dict:
        """Image and label maps of sample ``idx`` before the pipeline: ``{'img', 'gt', 'img_id', 'ori_shape'}``."""
        raise NotImplementedError(f'{type(self).__name__} must implement load_sample')

    def prepare_data(self, idx: int) -> dict:
        results = self.pipeline(self.load_sample(idx))
        return {'inputs': results['img'], 'data_samples': results['gt']}


class DenseMultiTaskDataset(DenseSamples):
    """Shared loading for the multi-task dense datasets: split file -> ids, per-id files, pipeline, packing.

    Subclasses set ``TASKS``, ``SPLIT_DIR``, ``IMAGE_DIR``, ``TASK_DIRS`` (task -> folders it needs), ``ARCHIVE``
    and ``URL``, and implement :meth:`load_task`.
    """

    SPLIT_DIR: ClassVar[str] = ''
    IMAGE_DIR: ClassVar[str] = ''
    TASK_DIRS: ClassVar[dict[str, tuple[str, ...]]] = {}
    ARCHIVE: ClassVar[str] = ''
    URL: ClassVar[str] = ''

    def __init__(self, data_root: str, split: str = 'train', tasks: Sequence[str] | None = None, **kwargs) -> None:
        self.tasks = self.select_tasks(tasks)
        self.split = split
        super().__init__(ann_file=osp.join(self.SPLIT_DIR, f'{split}.txt'), data_root=data_root, **kwargs)

    def _check_layout(self) -> None:
        needed = [self.ann_file, osp.join(self.data_root, self.IMAGE_DIR)]
        needed += [osp.join(self.data_root, d) for task in self.tasks for d in self.TASK_DIRS[task]]
        missing = [p for p in needed if not osp.exists(p)]
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: missing {missing}. Expected the extracted {self.ARCHIVE} under '
                f"data_root='{self.data_root}' ({self.IMAGE_DIR}/, {self.SPLIT_DIR}/{{train,val}}.txt and, for "
                f'tasks {list(self.tasks)}, {sorted({d for t in self.tasks for d in self.TASK_DIRS[t]})}); '
                f'download {self.URL} and extract it, see docs/dense_multitask.md.')

    def load_data_list(self) -> list[dict]:
        self._check_layout()
        with open(self.ann_file) as f:
            ids = [line.strip() for line in f if line.strip()]
        return [{'img_id': i, 'img_path': osp.join(self.data_root, self.IMAGE_DIR, f'{i}.jpg')} for i in ids]

    def load_task(self, task: str, img_id: str) -> torch.Tensor:
        """The label map of ``task`` for ``img_id`` in the layout of :mod:`dense_transforms`."""
        raise NotImplementedError(f'{type(self).__name__} must implement load_task')

    def _file(self, *parts: str) -> str:
        """``data_root/parts...``, checked to exist."""
        path = osp.join(self.data_root, *parts)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{type(self).__name__}: {path} is missing; re-extract {self.ARCHIVE} '
                                    f'({self.URL}) or remove the id from {self.ann_file}.')
        return path

    def load_sample(self, idx: int) -> dict:
        """Image and label maps of sample ``idx`` before the pipeline: ``{'img', 'gt', 'img_id', 'ori_shape'}``."""
        info = self.get_data_info(idx)
        img = load_rgb(self._file(self.IMAGE_DIR, f"{info['img_id']}.jpg"))
        shape = tuple(img.shape[-2:])
        gt = {task: resize_map(self.load_task(task, info['img_id']), task_kind(task), shape) for task in self.tasks}
        return {'img': img, 'gt': gt, 'img_id': info['img_id'], 'ori_shape': shape}


@DATASETS.register_module()
class PascalContextMT(DenseMultiTaskDataset):
    """PASCAL-Context multi-task (4,998 train / 5,105 val images): semseg (21 VOC classes), human_parts (background
    + 6 parts; images without annotated person parts are all 255), sal (distilled, binary: > 0.5 of 255) and
    normals (distilled, ``2 * x / 255 - 1``, kept only on classes NYUD also has, the zero vector elsewhere).

    Args:
        data_root: the extracted ``PASCAL_MT`` folder.
        split: ``'train'`` or ``'val'`` (``ImageSets/Context/{split}.txt``).
        tasks: subset of ``('semseg', 'human_parts', 'sal', 'normals')``; all by default.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``test_mode``, ...).
    """

    METAINFO: ClassVar[dict] = {'tasks': ('semseg', 'human_parts', 'sal', 'normals'), 'semseg_classes': VOC_CLASSES,
                                'human_parts_classes': HUMAN_PART_CLASSES}
    TASKS = ('semseg', 'human_parts', 'sal', 'normals')
    SPLIT_DIR = 'ImageSets/Context'
    IMAGE_DIR = 'JPEGImages'
    TASK_DIRS: ClassVar[dict[str, tuple[str, ...]]] = {
        'semseg': ('semseg',), 'human_parts': ('human_parts',), 'sal': ('sal_distill',),
        'normals': ('normals_distill', 'pascal-context/trainval')}
    ARCHIVE = 'PASCAL_MT.tgz'
    URL = PASCAL_MT_URL

    def load_task(self, task: str, img_id: str) -> torch.Tensor:
        if task == 'semseg':
            return self._load_semseg(img_id)
        if task == 'human_parts':
            return self._load_human_parts(img_id)
        if task == 'sal':
            sal = np.array(Image.open(self._file('sal_distill', f'{img_id}.png')).convert('L')) / 255.0
            return torch.from_numpy((sal > 0.5).astype(np.int64))
        return self._load_normals(img_id)

    def _load_semseg(self, img_id: str) -> torch.Tensor:
        # VOC12 masks take precedence where they exist (they carry VOC's own 255 boundaries), as in ASTMT / MTLoRA.
        voc = osp.join(self.data_root, 'semseg', 'VOC12', f'{img_id}.png')
        path = voc if osp.isfile(voc) else self._file('semseg', 'pascal-context', f'{img_id}.png')
        return torch.from_numpy(load_png(path).astype(np.int64))

    def _load_human_parts(self, img_id: str) -> torch.Tensor:
        """PASCAL-Part ``anno`` struct: ``objects`` (``class_ind``, ``mask``, ``parts`` (``part_name``, ``mask``))."""
        anno = scipy.io.loadmat(self._file('human_parts', f'{img_id}.mat'))['anno'][0, 0]
        target = None
        for obj in anno['objects'][0]:
            parts = obj['parts']
            if int(obj['class_ind'][0, 0]) != VOC_PERSON or parts.size == 0:
                continue
            if target is None:
                target = np.zeros(obj['mask'].shape, dtype=np.int64)
            for part in parts[0]:
                target[part['mask'].astype(bool)] = HUMAN_PART_IDS[str(part['part_name'][0])]
        if target is None or not target.any():
            # No annotated person part: ignore the whole image (a 1 x 1 map, resized to the image by the caller).
            return torch.full((1, 1), IGNORE_INDEX, dtype=torch.int64)
        return torch.from_numpy(target)

    def _load_normals(self, img_id: str) -> torch.Tensor:
        normals = 2.0 * load_png(self._file('normals_distill', f'{img_id}.png'))[..., :3].astype(np.float32) / 255 - 1
        labels = scipy.io.loadmat(self._file('pascal-context', 'trainval', f'{img_id}.mat'))['LabelMap']
        valid = np.isin(labels, list(NORMALS_VALID_CONTEXT_CLASSES))
        return normals_to_tensor(normals * valid[..., None])


@DATASETS.register_module()
class NYUDMT(DenseMultiTaskDataset):
    """NYUD-v2 multi-task (795 train / 654 val images): semseg (40 classes; 0 is void -> 255, others - 1),
    depth (metres, ``.npy``, 0 = no measurement) and normals (``.npy`` (H, W, 3) in [-1, 1], zero = no label).

    Args:
        data_root: the extracted ``NYUD_MT`` folder.
        split: ``'train'`` or ``'val'`` (``gt_sets/{split}.txt``).
        tasks: subset of ``('semseg', 'depth', 'normals')``; all by default.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO: ClassVar[dict] = {'tasks': ('semseg', 'depth', 'normals'), 'semseg_classes': NYUD_CLASSES}
    TASKS = ('semseg', 'depth', 'normals')
    SPLIT_DIR = 'gt_sets'
    IMAGE_DIR = 'images'
    TASK_DIRS: ClassVar[dict[str, tuple[str, ...]]] = {
        'semseg': ('segmentation',), 'depth': ('depth',), 'normals': ('normals',)}
    ARCHIVE = 'NYUD_MT.tgz'
    URL = NYUD_MT_URL

    def load_task(self, task: str, img_id: str) -> torch.Tensor:
        if task == 'semseg':
            seg = load_png(self._file('segmentation', f'{img_id}.png')).astype(np.int64)
            return torch.from_numpy(np.where(seg == 0, IGNORE_INDEX, seg - 1))
        if task == 'depth':
            depth = np.load(self._file('depth', f'{img_id}.npy')).astype(np.float32)
            return torch.from_numpy(depth.reshape(1, *depth.shape[-2:]))
        return normals_to_tensor(np.load(self._file('normals', f'{img_id}.npy')))
