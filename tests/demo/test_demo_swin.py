"""The shipped demo Swin (petl_vision.demo, the timm model ``swin_digits_demo``)."""
import hashlib

import pytest
import timm
import torch
from timm.models.swin_transformer import SwinTransformer

from petl_vision import demo

STAGE_SHAPES = [(2, 24, 16, 16), (2, 48, 8, 8), (2, 96, 4, 4), (2, 192, 2, 2)]


@pytest.fixture(scope='module')
def state():
    return torch.load(demo.DEMO_SWIN_CHECKPOINT, map_location='cpu', weights_only=True)


def test_checkpoint_matches_recorded_sha256():
    assert hashlib.sha256(demo.DEMO_SWIN_CHECKPOINT.read_bytes()).hexdigest() == demo.DEMO_SWIN_CHECKPOINT_SHA256


def test_checkpoint_is_the_headless_architecture(state):
    assert demo.demo_swin_kwargs() == {'img_size': 32, 'patch_size': 2, 'window_size': 4, 'embed_dim': 24,
                                       'depths': (1, 1, 2, 1), 'num_heads': (1, 2, 4, 8)}
    assert not any(k.startswith('head.') for k in state)
    model = SwinTransformer(num_classes=0, **demo.demo_swin_kwargs())
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 803_507


def test_build_demo_swin_loads_the_file_and_adds_a_head(state):
    model = demo.build_demo_swin(num_classes=7)
    assert model.head.fc.weight.shape == (7, 192)
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v), k
    fresh = demo.build_demo_swin(pretrained=False)
    assert not torch.equal(fresh.patch_embed.proj.weight, state['patch_embed.proj.weight'])
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_timm_model_loads_the_shipped_file_and_gives_four_nchw_stage_maps(state):
    model = timm.create_model('swin_digits_demo', pretrained=True).eval()
    assert model.num_classes == 0
    assert model.pretrained_cfg['mean'] == model.pretrained_cfg['std'] == (0.5, 0.5, 0.5)
    assert model.pretrained_cfg['input_size'] == (3, 32, 32)
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v), k
    assert [info['num_chs'] for info in model.feature_info] == [24, 48, 96, 192]
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(2, 3, 32, 32), intermediates_only=True, output_fmt='NCHW')
    assert [tuple(m.shape) for m in maps] == STAGE_SHAPES


def test_missing_or_foreign_checkpoint_says_how_to_recreate_it(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, 'DEMO_SWIN_CHECKPOINT', tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='--arch swin'):
        demo.build_demo_swin()
    monkeypatch.setattr(demo, 'DEMO_SWIN_CHECKPOINT', demo.DEMO_CHECKPOINT)  # the ViT's file
    with pytest.raises(RuntimeError, match='does not fit the demo SwinTransformer'):
        demo.build_demo_swin()
