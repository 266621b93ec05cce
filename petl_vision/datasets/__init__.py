"""Image-classification datasets (CIFAR-100, the VPT FGVC five, VTAB-1k, scikit-learn digits, your own folder),
multi-task wrappers and samplers, and transforms.

Every dataset's pipeline ends with :class:`PackInputs`; with ``collate_fn=dict(type='default_collate')`` a batch is
``{'inputs': uint8 (B, 3, H, W), 'data_samples': int64 (B,) labels}``.
"""
from petl_vision.datasets.cifar import CIFAR100
from petl_vision.datasets.dense_multitask import NYUDMT, DenseMultiTaskDataset, PascalContextMT
from petl_vision.datasets.dense_transforms import (DensePad, DenseRandomHorizontalFlip, DenseRandomScaleCrop,
                                                   DenseResize)
from petl_vision.datasets.digits import DigitsShiftTarget, SklearnDigits
from petl_vision.datasets.digits_dense import DigitsDenseMT
from petl_vision.datasets.digits_multitask import DigitsMultiTask
from petl_vision.datasets.episodes import Episode, EpisodeSampler, FixedProtocol, MetaDatasetProtocol
from petl_vision.datasets.fgvc import CUB200, FGVCDataset, NABirds, OxfordFlowers, StanfordCars, StanfordDogs
from petl_vision.datasets.image_folder import ImageFolder
from petl_vision.datasets.imagenet_r import ImageNetR
from petl_vision.datasets.multitask import MultiTaskDataset, TaskBalancedSampler, task_probabilities
from petl_vision.datasets.point_clouds import ModelNet40, PointCloudDataset, ScanObjectNN
from petl_vision.datasets.point_transforms import PointsRotate, PointsSample, PointsScaleTranslate
from petl_vision.datasets.transforms import (CenterCrop, LoadImage, PackInputs, RandomAffine, RandomCrop,
                                             RandomFlip, RandomResizedCrop, Resize)
from petl_vision.datasets.vtab import VTAB_GROUPS, VTAB_TASKS, VTAB1k

__all__ = ['CIFAR100', 'SklearnDigits', 'DigitsShiftTarget', 'RandomAffine', 'FGVCDataset',
           'CUB200', 'NABirds', 'OxfordFlowers', 'StanfordDogs',
           'StanfordCars', 'VTAB1k', 'VTAB_TASKS', 'VTAB_GROUPS', 'LoadImage', 'Resize', 'RandomResizedCrop',
           'RandomCrop', 'CenterCrop', 'RandomFlip', 'PackInputs', 'DenseMultiTaskDataset', 'PascalContextMT', 'NYUDMT',
           'DigitsDenseMT', 'DenseResize', 'DenseRandomScaleCrop', 'DenseRandomHorizontalFlip', 'DensePad', 'Episode',
           'EpisodeSampler', 'FixedProtocol', 'MetaDatasetProtocol', 'PointCloudDataset', 'ScanObjectNN', 'ModelNet40',
           'PointsScaleTranslate', 'PointsRotate', 'PointsSample', 'ImageFolder', 'DigitsMultiTask', 'MultiTaskDataset',
           'TaskBalancedSampler', 'task_probabilities', 'ImageNetR']
