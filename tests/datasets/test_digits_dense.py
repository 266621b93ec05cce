"""DigitsDenseMT: splits of the quick start's target task, label maps derived from the rotated digits (dtypes,
ranges, the relief's finite differences, the mirror identity of normals), and one training / validation step of
MultiTaskDenseModel on the demo Swin."""
import math

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from petl_vision import demo
from petl_vision.datasets.dense_transforms import hflip_sample
from petl_vision.datasets.digits_dense import (
    PIXEL_PITCH,
    TASKS,
    DigitsDenseMT,
    dense_labels,
    digits_dense_arrays,
    height_field,
    normals_from_height,
)
from petl_vision.evaluation.dense import MultiTaskDenseMetric
from petl_vision.models.dense import MultiTaskDenseModel
from petl_vision.registry import DATASETS


@pytest.mark.parametrize('split, n', [('train', 200), ('val', 100), ('test', 400)])
def test_splits_are_the_target_task_splits(split, n):
    ds = DigitsDenseMT(split=split)
    images, digits = demo.target_task_arrays(split)
    assert len(ds) == n
    assert np.bincount([ds.get_data_info(i)['gt_label'] for i in range(n)], minlength=10).tolist() == [n // 10] * 10
    assert all(np.array_equal(ds.get_data_info(i)['img'], images[i]) for i in (0, n // 2, n - 1))
    assert len(DigitsDenseMT(split='train', shots=5)) == 50


def test_splits_are_disjoint_and_seeded():
    def keys(split, seed=0):
        return {img.tobytes() for img in digits_dense_arrays(split, seed, 20)[0]}

    train, val, test = keys('train'), keys('val'), keys('test')
    assert (len(train), len(val), len(test)) == (200, 100, 400)  # no duplicate image either
    assert not train & val and not train & test and not val & test
    assert keys('train', seed=1) != train and keys('test', seed=1) == test


def test_label_maps_have_the_documented_layouts():
    images, digits, labels = digits_dense_arrays('val', 0, 20)
    semseg, sal, normals, depth = (torch.from_numpy(labels[t]) for t in ('semseg', 'sal', 'normals', 'depth'))
    assert semseg.shape == sal.shape == (100, 32, 32) and semseg.dtype == sal.dtype == torch.int64
    assert normals.shape == (100, 3, 32, 32) and normals.dtype == torch.float32
    assert depth.shape == (100, 1, 32, 32) and depth.dtype == torch.float32
    assert set(sal.unique().tolist()) == {0, 1}
    assert torch.equal(sal.bool(), torch.from_numpy(images[:, 0] > 127))  # I > 0.5
    assert torch.equal(semseg > 0, sal.bool())  # foreground == sal
    fg_class = torch.where(sal.bool(), semseg, -1).amax((1, 2))  # the one foreground class of each image
    assert torch.equal(fg_class, torch.from_numpy(digits) + 1)
    assert semseg.min() == 0 and semseg.max() <= 10
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(100, 32, 32))
    assert (normals[:, 2] > 0).all() and normals[:, 2].min() < math.cos(math.radians(30))  # tilted, never away
    assert depth.min() >= 2.0 - 1.4 - 1e-5 and depth.max() <= 2.0 and (depth > 0).all()
    assert (depth[:, 0][sal.bool()].mean() < depth[:, 0][~sal.bool()].mean() - 0.3)  # strokes are closer
    # each digit is embossed to its own height, 0.5 + 0.1 d metres: the peak of an image reveals its digit
    peak = (2.0 - depth).amax((1, 2, 3)) / height_field(torch.from_numpy(images)).amax((1, 2))
    torch.testing.assert_close(peak, 0.5 + 0.1 * torch.from_numpy(digits).float())


def test_normals_are_the_finite_differences_of_the_relief():
    _, _, labels = digits_dense_arrays('val', 0, 20)
    n, h = labels['normals'].astype(np.float64), 2.0 - labels['depth'][:, 0].astype(np.float64)  # h = 2 - depth
    dh_drow, dh_dcol = np.gradient(h, PIXEL_PITCH, axis=(1, 2))  # central differences inside the image
    inner = (slice(None), slice(1, -1), slice(1, -1))
    np.testing.assert_allclose((-n[:, 0] / n[:, 2])[inner], dh_dcol[inner], atol=1e-4)  # x right
    np.testing.assert_allclose((n[:, 1] / n[:, 2])[inner], dh_drow[inner], atol=1e-4)  # y up: rows go down


def test_normals_follow_x_right_y_up_z_towards_the_viewer():
    ramp = torch.arange(6.0).expand(5, 6)  # (H, W), rising to the right by 1 per pixel
    tilt = 1 / PIXEL_PITCH
    right = normals_from_height(ramp[None])[0]
    torch.testing.assert_close(right[:, 2, 2], torch.tensor([-tilt, 0, 1]) / math.hypot(tilt, 1))  # faces left
    down = normals_from_height(ramp.T[None])[0]  # rising downwards (towards larger rows)
    torch.testing.assert_close(down[:, 2, 2], torch.tensor([0, tilt, 1]) / math.hypot(tilt, 1))  # faces up


def test_mirrored_images_give_mirrored_maps_with_negated_normal_x():
    images, digits, labels = digits_dense_arrays('val', 0, 20)
    images, digits = torch.from_numpy(images[:8]), torch.from_numpy(digits[:8])
    h = height_field(images)
    torch.testing.assert_close(normals_from_height(h.flip(-1)), normals_from_height(h).flip(-1) * torch.tensor(
        [-1.0, 1, 1]).view(1, 3, 1, 1))
    mirrored = dense_labels(images.flip(-1), digits)
    for i in range(8):
        sample = {'img': images[i], 'gt': {t: torch.from_numpy(labels[t][i]) for t in TASKS}}
        flipped = hflip_sample(sample)['gt']
        for t in TASKS:
            torch.testing.assert_close(mirrored[t][i], flipped[t], rtol=0, atol=1e-6, msg=t)


def test_samples_go_through_the_dense_pipeline():
    with DefaultScope.overwrite_default_scope('petl_vision'):
        plain = DigitsDenseMT(split='val')
        mirrored = DigitsDenseMT(split='val', tasks=('sal', 'normals'),
                                 pipeline=[dict(type='DenseRandomHorizontalFlip', prob=1.0)])
        resized = DigitsDenseMT(split='val', pipeline=[dict(type='DenseResize', size=48)])
    a, b, c = plain[3], mirrored[3], resized[3]
    assert set(a['data_samples']) == set(TASKS) and set(b['data_samples']) == {'sal', 'normals'}
    assert a['inputs'].shape == (3, 32, 32) and a['inputs'].dtype == torch.uint8
    assert torch.equal(b['inputs'], a['inputs'].flip(-1))
    regenerated = dense_labels(b['inputs'][None], torch.tensor([plain.get_data_info(3)['gt_label']]))
    for t in ('sal', 'normals'):  # labels of the mirrored image == mirrored labels
        torch.testing.assert_close(b['data_samples'][t], regenerated[t][0], rtol=0, atol=1e-6)
    assert c['inputs'].shape == (3, 48, 48) and c['data_samples']['normals'].shape == (3, 48, 48)
    assert c['data_samples']['semseg'].shape == (48, 48) and c['data_samples']['semseg'].dtype == torch.int64
    assert c['data_samples']['depth'].shape == (1, 48, 48)
    assert plain.get_data_info(3)['gt']['sal'].flags.writeable  # the pipeline gets copies, the cache stays intact


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match='split must be one of'):
        DigitsDenseMT(split='training')
    with pytest.raises(ValueError, match=r"unknown: \['edges'\]"):
        DigitsDenseMT(tasks=('semseg', 'edges'))
    with pytest.raises(ValueError, match='1..20 training images'):
        DigitsDenseMT(shots=21)
    with pytest.raises(ValueError, match='1..20 training images'):
        DigitsDenseMT(shots=0)


def test_registered_for_configs():
    with DefaultScope.overwrite_default_scope('petl_vision'):
        ds = DATASETS.build(dict(type='DigitsDenseMT', split='test', tasks=['depth']))
    assert isinstance(ds, DigitsDenseMT) and len(ds) == 400 and ds.metainfo['semseg_classes'][1] == '0'


def test_model_on_demo_swin_trains_and_is_scored():
    torch.manual_seed(0)
    model = MultiTaskDenseModel(dict(model='swin_digits_demo', pretrained=True), tasks=TASKS,
                                num_classes=dict(semseg=11), plan='linear',
                                decoder=dict(channels=(8, 8, 16, 16), expand=2))
    with DefaultScope.overwrite_default_scope('petl_vision'):
        ds = DigitsDenseMT(split='train', pipeline=[dict(type='DenseRandomHorizontalFlip')])
    batch = default_collate([ds[i] for i in range(0, 200, 25)])  # 8 images, one per digit 0..7
    frozen = {n: p.clone() for n, p in model.backbone.named_parameters()}
    decoders = {n: p.clone() for n, p in model.decoders.named_parameters()}
    wrapper = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2))
    losses = model.train_step(batch, wrapper)
    assert set(losses) == {'loss', *(f'loss_{t}' for t in TASKS)} and all(torch.isfinite(v) for v in losses.values())
    assert math.isclose(losses['loss_semseg'].item(), math.log(11), rel_tol=0.5)
    assert all(torch.equal(p, frozen[n]) for n, p in model.backbone.named_parameters())
    assert any(not torch.equal(p, decoders[n]) for n, p in model.decoders.named_parameters())
    preds = model.val_step(batch)
    metric = MultiTaskDenseMetric(tasks=TASKS, num_classes=dict(semseg=11))
    metric.process(batch, preds)
    scores = metric.compute_metrics(metric.results)
    assert {'semseg/mIoU', 'sal/maxF', 'sal/mIoU', 'normals/mean', 'depth/rmse'} <= set(scores)
    assert all(math.isfinite(v) for v in scores.values())
    assert 0 <= scores['semseg/mIoU'] <= 100 and 0 <= scores['normals/mean'] <= 180
