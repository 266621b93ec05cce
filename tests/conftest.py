"""Tiny backbones shared by the test suite (32 px images, a few blocks, small width)."""
import pytest
import torch
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer


def tiny_vit(num_classes: int = 5, **kw) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=num_classes,
                             **kw)


def tiny_swin(num_classes: int = 5) -> SwinTransformer:
    # depths 2: the second block of each stage uses shifted windows, so the window mask path is exercised
    torch.manual_seed(0)
    return SwinTransformer(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2),
                           num_classes=num_classes)


BACKBONES = {'vit': tiny_vit, 'swin': tiny_swin}


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
