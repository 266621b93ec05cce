"""The shipped demo backbone and the demo's target task (petl_vision.demo)."""
import hashlib

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from petl_vision import demo


def test_checkpoint_matches_recorded_sha256():
    assert hashlib.sha256(demo.DEMO_CHECKPOINT.read_bytes()).hexdigest() == demo.DEMO_CHECKPOINT_SHA256


def test_checkpoint_is_the_headless_architecture():
    state = torch.load(demo.DEMO_CHECKPOINT, map_location='cpu', weights_only=True)
    assert demo.demo_backbone_kwargs() == {'img_size': 32, 'patch_size': 8, 'embed_dim': 96, 'depth': 6,
                                           'num_heads': 3}
    assert not any(k.startswith('head.') for k in state)
    assert state['pos_embed'].shape == (1, 17, 96)  # class token + 4x4 patches
    model = VisionTransformer(num_classes=0, **demo.demo_backbone_kwargs())
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 691_488


def test_build_demo_backbone_loads_the_file_and_adds_a_head():
    state = torch.load(demo.DEMO_CHECKPOINT, map_location='cpu', weights_only=True)
    model = demo.build_demo_backbone(num_classes=7)
    assert model.head.weight.shape == (7, 96)
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v), k
    fresh = demo.build_demo_backbone(pretrained=False)
    assert not torch.equal(fresh.pos_embed, state['pos_embed'])
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize('split, n', [('train', 200), ('val', 100), ('test', 400)])
def test_target_split_shapes_and_class_counts(split, n):
    images, labels = demo.target_task_arrays(split)
    assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
    assert np.array_equal(images[:, 0], images[:, 2])  # grayscale repeated over RGB


def test_target_splits_are_deterministic_and_seeded():
    for split in ('train', 'val', 'test'):
        a, b = demo.target_task_arrays(split, seed=3), demo.target_task_arrays(split, seed=3)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(demo.target_task_arrays('train', seed=0)[0], demo.target_task_arrays('train', seed=1)[0])
    assert np.array_equal(demo.target_task_arrays('test', seed=0)[0], demo.target_task_arrays('test', seed=1)[0])
    assert demo.target_task_arrays('train', shots=5)[0].shape == (50, 3, 32, 32)


def test_pools_are_disjoint_and_cover_all_digits():
    _, labels = demo.digits_images()
    source, target = demo._pools(labels)
    assert target.shape == (10, 70) and len(source) == 1797 - 700
    assert not set(source) & set(target.reshape(-1))
    assert (labels[target] == np.arange(10)[:, None]).all()
    assert demo.source_arrays()[0].shape == (1097, 3, 32, 32)


def test_target_shift_is_a_counter_clockwise_rotation(monkeypatch):
    images, _ = demo.digits_images()
    assert demo.TARGET_ROTATION == 30.0
    shifted = demo.shift_to_target(images[:4])
    assert shifted.shape == (4, 3, 32, 32) and shifted.dtype == np.uint8
    assert not np.array_equal(shifted, images[:4])
    monkeypatch.setattr(demo, 'TARGET_ROTATION', 0.0)
    assert np.array_equal(demo.shift_to_target(images[:4]), images[:4])
    monkeypatch.setattr(demo, 'TARGET_ROTATION', 90.0)
    assert np.array_equal(demo.shift_to_target(images[:4]), np.rot90(images[:4], k=1, axes=(2, 3)))


def test_bad_arguments_say_what_to_use():
    with pytest.raises(ValueError, match="use one of"):
        demo.target_task_arrays('training')
    with pytest.raises(ValueError, match='1..20 training images'):
        demo.target_task_arrays('train', shots=25)
