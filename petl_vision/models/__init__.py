"""mmengine models: image classifier (and, later, dense multi-task and point-cloud models)."""
from .backbone_builder import build_timm_backbone, load_backbone_weights
from .classifier import ImageClassifier
from .dense import MultiTaskDenseModel
from .dense_decoders import MultiScaleHead
from .multitask_classifier import MultiTaskClassifier
from .pha_classifier import PHAClassifier
from .point_classifier import PointClassifier, PointDataPreprocessor, build_point_backbone

__all__ = ['ImageClassifier', 'build_timm_backbone', 'load_backbone_weights']
__all__ += ['PointClassifier', 'PointDataPreprocessor', 'build_point_backbone']
__all__ += ['MultiScaleHead', 'MultiTaskDenseModel', 'MultiTaskClassifier', 'PHAClassifier']
