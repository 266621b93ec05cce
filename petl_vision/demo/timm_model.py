"""The demo backbone as a timm model, ``vit_digits_demo``: ``timm.create_model('vit_digits_demo', pretrained=True)``
loads the file shipped in this package (no download), with its normalisation (mean = std = 0.5) and input size in
the pretrained config, so configs use it like any timm backbone."""
from timm.models import generate_default_cfgs, register_model
from timm.models.vision_transformer import _create_vision_transformer

from . import DEMO_CHECKPOINT, demo_backbone_kwargs

default_cfgs = generate_default_cfgs({
    'vit_digits_demo.sklearn_digits': {
        'file': str(DEMO_CHECKPOINT), 'num_classes': 0, 'input_size': (3, 32, 32), 'mean': (0.5, 0.5, 0.5),
        'std': (0.5, 0.5, 0.5), 'interpolation': 'bilinear', 'crop_pct': 1.0, 'license': 'bsd-3-clause',
        'first_conv': 'patch_embed.proj', 'classifier': 'head',
    },
})


@register_model
def vit_digits_demo(pretrained: bool = False, **kwargs):
    """ViT with 6 blocks of width 96 on 32 px images, patch 8 (16 tokens), pretrained on scikit-learn digits."""
    return _create_vision_transformer('vit_digits_demo', pretrained=pretrained, **{**demo_backbone_kwargs(), **kwargs})
