"""Point-cloud classification datasets in the files Point-BERT / Point-MAE / DAPT read.

- :class:`ScanObjectNN`: the official ``h5_files`` (``data`` (S, 2048, 3) float, ``label`` (S,) int), 15 classes,
  variants OBJ_BG, OBJ_ONLY and PB_T50_RS (the hardest). Points are used as stored (no normalisation).
- :class:`ModelNet40`: Point-BERT's processed ``modelnet40_{train,test}_8192pts_fps.dat`` pickles, each
  ``[list_of_points, list_of_labels]`` with points (8192, 6) float32 (xyz, normal) in FPS order and labels
  ``np.array([class], int32)``; the first ``npoints`` points are kept and normalised to the unit sphere.

Each sample leaves the pipeline as ``{'inputs': float32 (N, 3), 'data_samples': int label}``. See
``docs/point_clouds.md`` for the layouts.
"""
from __future__ import annotations

import codecs
import os.path as osp
import pickle
from typing import Any, ClassVar

import h5py
import numpy as np
import torch
from mmengine.dataset import BaseDataset

from petl_vision.registry import DATASETS

SCANOBJECTNN_URL = 'https://hkust-vgd.github.io/scanobjectnn/ (h5_files.zip, after the terms-of-use form)'
MODELNET40_URL = ('Point-BERT DATASET.md: https://drive.google.com/drive/folders/1fAx8Jquh5ES92g1zm2WG6_ozgkwgHhUq '
                  '(modelnet40_normal_resampled)')
SCANOBJECTNN_CLASSES = ('bag', 'bin', 'box', 'cabinet', 'chair', 'desk', 'display', 'door', 'shelf', 'table', 'bed',
                        'pillow', 'sink', 'sofa', 'toilet')
# variant -> (folder, file stem of training_<stem>.h5 / test_<stem>.h5)
SCANOBJECTNN_VARIANTS: dict[str, tuple[str, str]] = {
    'OBJ_BG': ('main_split', 'objectdataset'),
    'OBJ_ONLY': ('main_split_nobg', 'objectdataset'),
    'PB_T50_RS': ('main_split', 'objectdataset_augmentedrot_scale75'),
}
SPLITS = ('train', 'test')
H5_KEYS = ('data', 'label')
H5_LAYOUT = "'data' (S, 2048, 3) float points and 'label' (S,) or (S, 1) int classes 0..14"


def _check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{name} split must be 'train' or 'test', got {split!r}")


class PointCloudDataset(BaseDataset):
    """Shared part: the clouds live in one array (``self.points``, (S, N, 3)); ``data_list`` holds rows and labels.

    Subclasses implement :meth:`load_points` -> (points, labels).
    """

    def load_points(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f'{type(self).__name__} must implement load_points')

    def load_data_list(self) -> list[dict]:
        self.points, labels = self.load_points()
        return [{'row': i, 'label': int(label)} for i, label in enumerate(labels)]

    def prepare_data(self, idx: int) -> dict[str, Any]:
        info = self.get_data_info(idx)
        results = {'inputs': torch.from_numpy(self.points[info['row']].copy()), 'data_samples': info['label']}
        return self.pipeline(results)


@DATASETS.register_module()
class ScanObjectNN(PointCloudDataset):
    """ScanObjectNN (Uy et al., ICCV 2019) from the official h5 files.

    Args:
        data_root: the unzipped ``h5_files`` folder (holding ``main_split/`` and ``main_split_nobg/``).
        variant: ``'OBJ_BG'`` (2,309 / 581 objects with background), ``'OBJ_ONLY'`` (same objects without) or
            ``'PB_T50_RS'`` (11,416 / 2,882 perturbed: translated, rotated, scaled; the hardest).
        split: ``'train'`` or ``'test'``.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ...).
    """

    METAINFO: ClassVar[dict] = {'classes': SCANOBJECTNN_CLASSES}

    def __init__(self, data_root: str, variant: str = 'PB_T50_RS', split: str = 'train', **kwargs) -> None:
        if variant not in SCANOBJECTNN_VARIANTS:
            raise ValueError(f'unknown ScanObjectNN variant {variant!r}; choose one of {list(SCANOBJECTNN_VARIANTS)}')
        _check_split('ScanObjectNN', split)
        self.variant, self.split = variant, split
        folder, stem = SCANOBJECTNN_VARIANTS[variant]
        prefix = 'training' if split == 'train' else 'test'
        super().__init__(ann_file=osp.join(folder, f'{prefix}_{stem}.h5'), data_root=data_root, **kwargs)

    def load_points(self) -> tuple[np.ndarray, np.ndarray]:
        if not osp.isfile(self.ann_file):
            layouts = '; '.join(f'{v}: {d}/{{training,test}}_{s}.h5' for v, (d, s) in SCANOBJECTNN_VARIANTS.items())
            raise FileNotFoundError(
                f'ScanObjectNN {self.variant} {self.split}: {self.ann_file} is missing. data_root='
                f"'{self.data_root}' should be the unzipped h5_files folder ({layouts}); download it from "
                f'{SCANOBJECTNN_URL}, see docs/point_clouds.md.')
        with h5py.File(self.ann_file, 'r') as f:
            missing = [key for key in H5_KEYS if key not in f]
            if missing:
                raise ValueError(f'ScanObjectNN: {self.ann_file} has no {missing} (found {sorted(f.keys())}); expected '
                               f'the official h5 layout: {H5_LAYOUT}')
            points = np.asarray(f['data'], dtype=np.float32)[..., :3]  # (S, N, 3)
            labels = np.asarray(f['label']).reshape(-1).astype(np.int64)  # (S,)
        if len(points) != len(labels):
            raise ValueError(f'ScanObjectNN: {self.ann_file} holds {len(points)} clouds but {len(labels)} labels; '
                             f'expected {H5_LAYOUT}')
        return np.ascontiguousarray(points), labels


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickle of numpy arrays refers to, under numpy 1 (``numpy.core``) and 2 (``numpy._core``) names."""
    allowed = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
               ('_codecs', 'encode'): codecs.encode}  # protocol-2 pickles store bytes through it
    for core in ('numpy.core', 'numpy._core'):
        allowed[(f'{core}.multiarray', '_reconstruct')] = np.zeros(0).__reduce__()[0]
        allowed[(f'{core}.multiarray', 'scalar')] = np.float32(0).__reduce__()[0]
        allowed[(f'{core}.numeric', '_frombuffer')] = np.zeros(0).__reduce_ex__(5)[0]
    return allowed


class NumpyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only; any other global (a class, a function) is refused, so a
    tampered ``.dat`` file cannot run code."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f'refusing to load {module}.{name}: this file should hold only numpy arrays')
        return self._ALLOWED[(module, name)]


def load_numpy_pickle(path: str) -> Any:
    """Load a pickle of numpy arrays and lists with :class:`NumpyUnpickler`."""
    with open(path, 'rb') as f:
        return NumpyUnpickler(f).load()


def normalize_to_unit_sphere(points: np.ndarray) -> np.ndarray:
    """Centre (N, 3) points on their mean and scale the farthest one to distance 1 (Point-BERT's ``pc_normalize``)."""
    points = points - points.mean(axis=0)
    return points / np.sqrt((points ** 2).sum(axis=1)).max()


@DATASETS.register_module()
class ModelNet40(PointCloudDataset):
    """ModelNet40 (Wu et al., CVPR 2015; 9,843 train / 2,468 test shapes) from Point-BERT's FPS ``.dat`` files.

    Args:
        data_root: ``modelnet40_normal_resampled`` holding ``modelnet40_shape_names.txt`` and
            ``modelnet40_{train,test}_8192pts_fps.dat``.
        split: ``'train'`` or ``'test'``.
        npoints: points kept per shape: the first ``npoints`` of the FPS order, i.e. an FPS sample of that size
            (1,024 in the recipes; 1,200 followed by ``PointsSample(1024)`` reproduces Point-MAE's training draw).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO: ClassVar[dict] = {'classes': ()}  # read from modelnet40_shape_names.txt
    NUM_CLASSES = 40

    def __init__(self, data_root: str, split: str = 'train', npoints: int = 1024, **kwargs) -> None:
        _check_split('ModelNet40', split)
        if npoints < 1:
            raise ValueError(f'ModelNet40 npoints must be >= 1, got {npoints}')
        self.split, self.npoints = split, npoints
        super().__init__(ann_file=f'modelnet40_{split}_8192pts_fps.dat', data_root=data_root, **kwargs)

    def _require(self, path: str) -> str:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f"ModelNet40: {path} is missing. data_root='{self.data_root}' should be Point-BERT's "
                'modelnet40_normal_resampled folder with modelnet40_shape_names.txt and '
                f'modelnet40_{{train,test}}_8192pts_fps.dat; download them from {MODELNET40_URL}, see '
                'docs/point_clouds.md.')
        return path

    def load_points(self) -> tuple[np.ndarray, np.ndarray]:
        with open(self._require(osp.join(self.data_root, 'modelnet40_shape_names.txt'))) as f:
            classes = tuple(line.strip() for line in f if line.strip())
        if len(classes) != self.NUM_CLASSES:
            raise ValueError(f'modelnet40_shape_names.txt lists {len(classes)} classes, expected 40')
        self._metainfo['classes'] = classes
        clouds, labels = load_numpy_pickle(self._require(self.ann_file))
        if len(clouds) != len(labels):
            raise ValueError(f'{self.ann_file} holds {len(clouds)} clouds but {len(labels)} labels')
        short = min(len(c) for c in clouds)
        if short < self.npoints:
            raise ValueError(f'ModelNet40(npoints={self.npoints}) but {self.ann_file} has clouds of {short} points')
        points = np.stack([normalize_to_unit_sphere(np.asarray(c, dtype=np.float32)[:self.npoints, :3])
                           for c in clouds]).astype(np.float32)  # (S, npoints, 3)
        return points, np.array([int(np.asarray(label).reshape(-1)[0]) for label in labels], dtype=np.int64)
