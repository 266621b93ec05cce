"""Multi-task dense datasets read tiny fixtures written in the real PASCAL_MT / NYUD_MT formats; joint transforms
keep the image and every label map aligned."""
import numpy as np
import pytest
import scipy.io
import torch
from mmengine.registry import DefaultScope
from PIL import Image

from petl_vision.datasets.dense_multitask import NYUDMT, PascalContextMT
from petl_vision.datasets.dense_transforms import (
    DensePad,
    DenseRandomHorizontalFlip,
    DenseRandomScaleCrop,
    DenseResize,
    crop_sample,
    hflip_sample,
    resize_sample,
)
from petl_vision.registry import DATASETS, TRANSFORMS

H, W = 4, 6


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)


def _jpg(path, value=(200, 100, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), value, dtype=np.uint8)).save(path, quality=100)


def _split(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{i}\n' for i in ids))


def _parts_mat(path, objects):
    """PASCAL-Part ``anno`` struct as scipy writes MATLAB structs: objects (class, class_ind, mask, parts)."""
    objs = np.zeros((1, len(objects)), dtype=[('class', 'O'), ('class_ind', 'O'), ('mask', 'O'), ('parts', 'O')])
    for k, (name, class_ind, mask, parts) in enumerate(objects):
        if parts:
            arr = np.zeros((1, len(parts)), dtype=[('part_name', 'O'), ('mask', 'O')])
            for j, part in enumerate(parts):
                arr[0, j] = part
        else:
            arr = np.zeros((0, 0))
        objs[0, k] = (name, np.array([[class_ind]]), mask.astype(np.uint8), arr)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {'anno': {'imname': path.stem, 'objects': objs}})


@pytest.fixture
def pascal_root(tmp_path):
    root = tmp_path / 'PASCAL_MT'
    _split(root / 'ImageSets/Context/train.txt', ['a', 'b'])
    for i in 'ab':
        _jpg(root / f'JPEGImages/{i}.jpg')
    seg = np.zeros((H, W), np.uint8)
    seg[0, :3] = 15
    seg[3, 5] = 255
    _png(root / 'semseg/pascal-context/a.png', seg)
    _png(root / 'semseg/pascal-context/b.png', np.ones((H, W)))
    _png(root / 'semseg/VOC12/b.png', np.full((H, W), 7))  # VOC12 masks take precedence

    person = np.zeros((H, W), bool)
    person[:, :2] = True
    head = np.zeros((H, W), bool)
    head[0, :2] = True
    lfoot = np.zeros((H, W), bool)
    lfoot[3, :2] = True
    neck = np.zeros((H, W), bool)
    neck[1, 0] = True
    _parts_mat(root / 'human_parts/a.mat', [
        ('person', 15, person, [('head', head), ('lfoot', lfoot), ('neck', neck)]),
        ('dog', 12, ~person, [('head', ~person)]),  # parts of other classes are not human parts
    ])
    _parts_mat(root / 'human_parts/b.mat', [('dog', 12, person, []), ('person', 15, person, [])])

    sal = np.array([[0, 127, 128, 255, 0, 0]] * H)
    _png(root / 'sal_distill/a.png', sal)
    _png(root / 'sal_distill/b.png', np.zeros((H, W)))

    normals = np.zeros((H, W, 3), np.uint8)
    normals[...] = (255, 0, 128)
    _png(root / 'normals_distill/a.png', normals)
    _png(root / 'normals_distill/b.png', normals)
    labels = np.full((H, W), 2, np.uint16)  # aeroplane: not an NYUD class, normals dropped
    labels[:2] = 284  # person: an NYUD class, normals kept
    for i in 'ab':
        (root / 'pascal-context/trainval').mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / f'pascal-context/trainval/{i}.mat', {'LabelMap': labels})
    return root


def test_pascal_reads_every_task(pascal_root):
    ds = PascalContextMT(str(pascal_root), split='train')
    assert len(ds) == 2
    out = ds[0]
    img, gt = out['inputs'], out['data_samples']
    assert img.dtype == torch.uint8 and img.shape == (3, H, W)
    assert torch.allclose(img[:, 1, 1].float(), torch.tensor([200.0, 100.0, 50.0]), atol=3)

    assert gt['semseg'].dtype == torch.int64
    assert gt['semseg'][0].tolist() == [15, 15, 15, 0, 0, 0] and gt['semseg'][3, 5] == 255

    parts = gt['human_parts']
    assert parts[0].tolist() == [1, 1, 0, 0, 0, 0]  # head
    assert parts[1].tolist() == [2, 0, 0, 0, 0, 0]  # neck -> torso
    assert parts[3].tolist() == [6, 6, 0, 0, 0, 0]  # left foot -> lower leg
    assert parts[2].tolist() == [0] * W

    assert gt['sal'][0].tolist() == [0, 0, 1, 1, 0, 0]  # > 0.5 of 255: 127 -> 0, 128 -> 1

    n = gt['normals']
    assert n.shape == (3, H, W) and n.dtype == torch.float32
    assert torch.allclose(n[:, 0, 0], torch.tensor([1.0, -1.0, 2 * 128 / 255 - 1]), atol=1e-6)
    assert torch.equal(n[:, 2:], torch.zeros(3, 2, W))  # class without NYUD normals: unlabelled


def test_pascal_voc12_semseg_and_image_without_parts(pascal_root):
    gt = PascalContextMT(str(pascal_root), split='train')[1]['data_samples']
    assert torch.equal(gt['semseg'], torch.full((H, W), 7))
    assert torch.equal(gt['human_parts'], torch.full((H, W), 255))  # no annotated person parts: all ignored


def test_task_subset_and_registry(pascal_root):
    ds = DATASETS.build({'type': 'PascalContextMT', 'data_root': str(pascal_root), 'tasks': ['sal']})
    assert set(ds[0]['data_samples']) == {'sal'}
    with pytest.raises(ValueError, match='depth'):
        PascalContextMT(str(pascal_root), tasks=['depth'])


def test_pipeline_from_config_keeps_ignore_values(pascal_root):
    pipeline = [{'type': 'DenseResize', 'size': (8, 12)}, {'type': 'DenseRandomHorizontalFlip', 'prob': 1.0},
                {'type': 'DensePad', 'size': (10, 12)}]
    with DefaultScope.overwrite_default_scope('petl_vision'):
        out = PascalContextMT(str(pascal_root), pipeline=pipeline)[0]
    gt = out['data_samples']
    assert out['inputs'].shape == (3, 10, 12)
    assert gt['semseg'][0].tolist() == [0] * 6 + [15] * 6 and gt['semseg'][8:].eq(255).all()
    # (1, -1, ~0) renormalised to unit length by the resize, then x negated by the flip.
    assert gt['normals'][0, 0, 0] == pytest.approx(-(0.5 ** 0.5), abs=1e-4) and gt['normals'][:, 8:].eq(0).all()


def test_missing_layout_names_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'PASCAL_MT\.tgz.*JPEGImages|JPEGImages.*PASCAL_MT\.tgz'):
        PascalContextMT(str(tmp_path), split='val')
    with pytest.raises(FileNotFoundError, match='NYUD_MT.tgz'):
        NYUDMT(str(tmp_path))


@pytest.fixture
def nyud_root(tmp_path):
    root = tmp_path / 'NYUD_MT'
    _split(root / 'gt_sets/val.txt', ['0001'])
    _jpg(root / 'images/0001.jpg')
    seg = np.zeros((H, W), np.uint8)
    seg[0] = [1, 2, 40, 0, 5, 5]
    _png(root / 'segmentation/0001.png', seg)
    (root / 'depth').mkdir()
    depth = np.linspace(0, 5, H * W, dtype=np.float32).reshape(H, W)
    np.save(root / 'depth/0001.npy', depth)
    (root / 'normals').mkdir()
    normals = np.zeros((H, W, 3), np.float32)
    normals[..., 2] = 1
    np.save(root / 'normals/0001.npy', normals)
    return root


def test_nyud_reads_every_task(nyud_root):
    gt = NYUDMT(str(nyud_root), split='val')[0]['data_samples']
    assert gt['semseg'][0].tolist() == [0, 1, 39, 255, 4, 4]  # 0 is void, the rest shift down by one
    assert gt['semseg'][1].tolist() == [255] * W
    assert gt['depth'].shape == (1, H, W) and gt['depth'][0, 0, 0] == 0 and gt['depth'][0, -1, -1] == 5
    assert torch.equal(gt['normals'][2], torch.ones(H, W))


def _sample():
    """A 2 x 3 sample whose maps all encode the column index, so alignment is checkable after any transform."""
    cols = torch.arange(3).expand(2, 3)
    normals = torch.stack([torch.full((2, 3), 0.6), torch.zeros(2, 3), torch.full((2, 3), 0.8)])
    return {'img': (cols * 10).to(torch.uint8).expand(3, 2, 3).clone(),
            'gt': {'semseg': cols.clone(), 'normals': normals, 'depth': (cols.float() + 1)[None]}}


def test_flip_negates_normals_x_and_keeps_alignment():
    s = hflip_sample(_sample())
    assert s['img'][0, 0].tolist() == [20, 10, 0]
    assert s['gt']['semseg'][0].tolist() == [2, 1, 0]
    assert s['gt']['depth'][0, 0].tolist() == [3.0, 2.0, 1.0]
    assert torch.allclose(s['gt']['normals'][:, 0, 0], torch.tensor([-0.6, 0.0, 0.8]))
    assert torch.equal(DenseRandomHorizontalFlip(prob=0.0)(_sample())['gt']['semseg'], _sample()['gt']['semseg'])
    assert DenseRandomHorizontalFlip(prob=1.0)(_sample())['gt']['semseg'][0].tolist() == [2, 1, 0]


def test_resize_uses_nearest_for_labels_and_renormalises_normals():
    s = DenseResize((4, 6))(_sample())
    assert s['gt']['semseg'][0].tolist() == [0, 0, 1, 1, 2, 2]
    assert s['gt']['depth'][0, 0].tolist() == [1, 1, 2, 2, 3, 3]
    assert torch.allclose(s['gt']['normals'].norm(dim=0), torch.ones(4, 6))
    assert s['img'].dtype == torch.uint8 and s['img'].shape == (3, 4, 6)


def test_pad_fills_no_label_values():
    s = DensePad((3, 4))(_sample())
    assert s['img'].shape == (3, 3, 4) and s['img'][:, 2].eq(0).all()
    assert s['gt']['semseg'][2].tolist() == [255] * 4 and s['gt']['semseg'][:, 3].tolist() == [255] * 3
    assert s['gt']['depth'][0, :, 3].eq(0).all() and s['gt']['normals'][:, 2].eq(0).all()
    with pytest.raises(ValueError, match='larger than the pad size'):
        DensePad((1, 1))(_sample())


def test_random_scale_crop_keeps_alignment():
    torch.manual_seed(0)
    t = TRANSFORMS.build({'type': 'DenseRandomScaleCrop', 'crop_size': (2, 2), 'scale_range': (2.0, 2.0)})
    out = t(_sample())
    assert out['img'].shape == (3, 2, 2)
    # Every map must be the same 2 x 2 window of the 2x-resized sample (depth divided by the scale).
    big = resize_sample(_sample(), (4, 6))
    windows = [crop_sample(big, top, left, (2, 2)) for top in range(3) for left in range(5)]
    matches = [w for w in windows if torch.equal(w['img'], out['img']) and torch.equal(w['gt']['semseg'],
                                                                                        out['gt']['semseg'])]
    assert len(matches) >= 1
    assert any(torch.allclose(w['gt']['depth'] / 2, out['gt']['depth']) for w in matches)
    small = DenseRandomScaleCrop(crop_size=(4, 4), scale_range=(1.0, 1.0))(_sample())
    assert small['gt']['semseg'].shape == (4, 4) and (small['gt']['semseg'] == 255).sum() == 16 - 6
