"""Backbones and their descriptors (timm ViT, timm Swin, timm ResNet, point transformer).

Importing this package registers each family's descriptor with the core (``petl_vision.tuners.descriptor``).
"""
from ..tuners.descriptor import BackboneSpec, describe
from . import point_transformer, resnet, swin, vit  # noqa: F401  (register the descriptors)

__all__ = ['BackboneSpec', 'describe']
