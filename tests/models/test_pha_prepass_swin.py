"""PHAClassifier(prepass_block=k) on a backbone whose forward_intermediates counts stages, not blocks (Swin):
refused by name, instead of a pre-pass that silently stops after *stage* k."""
import pytest

from petl_vision.models.pha_classifier import PHAClassifier
from petl_vision.setup_env import register_all_modules

register_all_modules()
SWIN = dict(model='swin_tiny_patch4_window7_224', pretrained=False, img_size=32, patch_size=2, window_size=4,
            embed_dim=16, depths=(2, 2), num_heads=(1, 2))


def test_prepass_block_on_a_backbone_whose_intermediates_are_stages_is_refused():
    with pytest.raises(ValueError, match=r'prepass_block=1 names block layers\.0\.blocks\.1.*stages'):
        PHAClassifier(backbone=SWIN, tasks={'a': 2, 'b': 3}, plan=[dict(type='PHA', rank=4)], prepass_block=1)
    PHAClassifier(backbone=SWIN, tasks={'a': 2, 'b': 3}, plan=[dict(type='PHA', rank=4)])  # no pre-pass stop: fine
