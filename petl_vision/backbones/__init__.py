"""Backbone descriptors and backbones (timm ViT, timm Swin, timm ResNet, point transformer)."""
from torch import nn

from .spec import BackboneSpec


def describe(model: nn.Module) -> BackboneSpec:
    """The descriptor of ``model``'s family; unknown models get a generic one (Linear/norm targets only)."""
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        from .vit import vit_spec
        return vit_spec(model)
    if isinstance(model, SwinTransformer):
        from .swin import swin_spec
        return swin_spec(model)
    from timm.models.resnet import ResNet

    if isinstance(model, ResNet):
        from .resnet import resnet_spec
        return resnet_spec(model)
    spec_fn = getattr(model, 'petl_spec', None)
    if callable(spec_fn):
        return spec_fn()
    return BackboneSpec(name='generic', blocks='*', final_norm=None)


__all__ = ['BackboneSpec', 'describe']
