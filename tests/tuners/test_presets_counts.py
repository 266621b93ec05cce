"""The published trainable counts of every preset on ViT-B/16 (no head), the acceptance numbers."""
import pytest
import timm
import torch

import petl_vision as pv

VIT_B_COUNTS = {
    'linear': 0, 'bitfit': 102_912, 'lora': 294_912, 'adapter': 156_768, 'adaptformer': 156_768,
    'houlsby': 313_536, 'vpt_shallow': 7_680, 'vpt_deep': 92_160, 'prefix': 184_320, 'ssf': 205_824,
    'utuning': 341_088, 'bypass': 387_312, 'full': 85_798_656,
}


def meta_model(name: str):
    with torch.device('meta'):  # shapes only: building ViT-B on meta takes milliseconds and no memory
        return timm.create_model(name, pretrained=False, num_classes=0)


def test_every_preset_has_an_acceptance_number():
    assert set(pv.list_presets()) == set(VIT_B_COUNTS)


@pytest.mark.parametrize('preset', sorted(VIT_B_COUNTS))
def test_vit_base_counts_match_the_published_tables(preset):
    model = pv.apply_tuners(meta_model('vit_base_patch16_224'), preset)
    assert pv.count_parameters(model)['trainable'] == VIT_B_COUNTS[preset]


def test_swin_tiny_counts_follow_the_stage_widths():
    """Swin-T: depths (2, 2, 6, 2), widths 96/192/384/768, so per-block formulas sum over stages."""
    depths, widths = (2, 2, 6, 2), (96, 192, 384, 768)
    blocks = [w for d, w in zip(depths, widths) for _ in range(d)]
    expected = {
        'lora': sum(2 * 2 * 8 * w for w in blocks),  # q and v: A (8 x w) + B (w x 8)
        'adapter': sum(w * 8 + 8 + 8 * w + w for w in blocks),
        'houlsby': 2 * sum(w * 8 + 8 + 8 * w + w for w in blocks),
        'prefix': sum(2 * 10 * w for w in blocks),
        'vpt_deep': sum(10 * w for w in blocks),
        'vpt_shallow': 10 * 96,
    }
    for preset, count in expected.items():
        model = pv.apply_tuners(meta_model('swin_tiny_patch4_window7_224'), preset)
        assert pv.count_parameters(model)['trainable'] == count, preset
