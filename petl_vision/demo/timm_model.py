"""The demo backbones as timm models, ``vit_digits_demo`` and ``swin_digits_demo``:
``timm.create_model('swin_digits_demo', pretrained=True)`` loads the file shipped in this package (no download),
with its normalisation (mean = std = 0.5) and input size in the pretrained config, so configs use them like any
timm backbone."""
from timm.models import generate_default_cfgs, register_model
from timm.models.swin_transformer import _create_swin_transformer
from timm.models.vision_transformer import _create_vision_transformer

from . import DEMO_CHECKPOINT, DEMO_SWIN_CHECKPOINT, demo_backbone_kwargs, demo_swin_kwargs

_DIGITS_CFG = {'num_classes': 0, 'input_size': (3, 32, 32), 'mean': (0.5, 0.5, 0.5), 'std': (0.5, 0.5, 0.5),
               'interpolation': 'bilinear', 'crop_pct': 1.0, 'license': 'bsd-3-clause'}
default_cfgs = generate_default_cfgs({
    'vit_digits_demo.sklearn_digits': {
        'file': str(DEMO_CHECKPOINT), **_DIGITS_CFG, 'first_conv': 'patch_embed.proj', 'classifier': 'head'},
    'swin_digits_demo.sklearn_digits': {
        'file': str(DEMO_SWIN_CHECKPOINT), **_DIGITS_CFG, 'first_conv': 'patch_embed.proj', 'classifier': 'head.fc'},
})


@register_model
def vit_digits_demo(pretrained: bool = False, **kwargs):
    """ViT with 6 blocks of width 96 on 32 px images, patch 8 (16 tokens), pretrained on scikit-learn digits."""
    return _create_vision_transformer('vit_digits_demo', pretrained=pretrained, **{**demo_backbone_kwargs(), **kwargs})


@register_model
def swin_digits_demo(pretrained: bool = False, **kwargs):
    """Swin with stages of 1/1/2/1 blocks, widths 24..192, on 32 px images, patch 2, window 4, pretrained on digits."""
    return _create_swin_transformer('swin_digits_demo', pretrained=pretrained, **{**demo_swin_kwargs(), **kwargs})
