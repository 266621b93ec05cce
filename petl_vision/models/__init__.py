"""mmengine models: image classifier (and, later, dense multi-task and point-cloud models)."""
from .backbone_builder import build_timm_backbone, load_backbone_weights
from .classifier import ImageClassifier

__all__ = ['ImageClassifier', 'build_timm_backbone', 'load_backbone_weights']
