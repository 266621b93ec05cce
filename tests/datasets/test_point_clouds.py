"""ScanObjectNN / ModelNet40 read tiny fixtures in the real h5 / .dat formats; point transforms follow Point-MAE."""
import math
import pickle

import h5py
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from petl_vision.datasets.point_clouds import ModelNet40, ScanObjectNN, load_numpy_pickle
from petl_vision.datasets.point_transforms import PointsRotate, PointsSample, PointsScaleTranslate, rotation_matrix
from petl_vision.registry import DATASETS, TRANSFORMS

MODELNET_CLASSES = [f'class{i:02d}' for i in range(40)]


def _h5(path, data, label):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, 'w') as f:  # the official files also hold 'mask'; the loader ignores it
        f['data'] = data
        f['label'] = label
        f['mask'] = np.zeros(data.shape[:2], dtype=np.int64)


@pytest.fixture
def scan_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / 'h5_files'
    for folder, stem, n in [('main_split', 'objectdataset', 3), ('main_split_nobg', 'objectdataset', 2),
                            ('main_split', 'objectdataset_augmentedrot_scale75', 4)]:
        for prefix in ('training', 'test'):
            data = rng.normal(size=(n, 16, 3)).astype(np.float32)
            _h5(root / folder / f'{prefix}_{stem}.h5', data, np.arange(n, dtype=np.uint8) + 10)
    return root


@pytest.mark.parametrize(('variant', 'length'), [('OBJ_BG', 3), ('OBJ_ONLY', 2), ('PB_T50_RS', 4)])
def test_scanobjectnn_variants(scan_root, variant, length):
    ds = ScanObjectNN(str(scan_root), variant=variant, split='test')
    folder, stem = {'OBJ_BG': ('main_split', 'objectdataset'), 'OBJ_ONLY': ('main_split_nobg', 'objectdataset'),
                    'PB_T50_RS': ('main_split', 'objectdataset_augmentedrot_scale75')}[variant]
    with h5py.File(scan_root / folder / f'test_{stem}.h5') as f:
        data = np.asarray(f['data'])
    assert len(ds) == length and len(ds.metainfo['classes']) == 15
    for i in range(length):
        sample = ds[i]
        assert sample['inputs'].dtype == torch.float32 and sample['inputs'].shape == (16, 3)
        assert np.array_equal(sample['inputs'].numpy(), data[i])  # as stored: ScanObjectNN is not renormalised
        assert sample['data_samples'] == 10 + i


def test_scanobjectnn_pipeline_and_errors(scan_root, tmp_path):
    ds = ScanObjectNN(str(scan_root), variant='OBJ_BG', split='train', pipeline=[PointsSample(8)])
    inputs = ds[1]['inputs']
    assert inputs.shape == (8, 3)
    with h5py.File(scan_root / 'main_split/training_objectdataset.h5') as f:
        all_data = torch.from_numpy(np.asarray(f['data']))
    raw = all_data[1]
    assert all((raw == p).all(-1).any() for p in inputs)
    subset = ScanObjectNN(str(scan_root), variant='OBJ_BG', split='train', indices=[2])
    assert len(subset) == 1 and subset[0]['data_samples'] == 12
    assert torch.equal(subset[0]['inputs'], all_data[2])  # the subset's sample reads its own row
    with pytest.raises(FileNotFoundError, match=r'main_split_nobg/\{training,test\}_objectdataset.h5.*scanobjectnn'):
        ScanObjectNN(str(tmp_path), variant='OBJ_ONLY')
    with pytest.raises(ValueError, match='choose one of'):
        ScanObjectNN(str(scan_root), variant='hardest')


def _dat(path, clouds, labels, protocol):
    with open(path, 'wb') as f:
        pickle.dump([clouds, labels], f, protocol=protocol)


@pytest.fixture
def modelnet_root(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / 'modelnet40_normal_resampled'
    root.mkdir()
    (root / 'modelnet40_shape_names.txt').write_text('\n'.join(MODELNET_CLASSES) + '\n')
    for split, n, protocol in [('train', 3, 4), ('test', 2, 2)]:  # Point-BERT's files: python 3 pickles
        clouds = [(rng.normal(size=(40, 6)) * 3 + 5).astype(np.float32) for _ in range(n)]
        _dat(root / f'modelnet40_{split}_8192pts_fps.dat', clouds, [np.array([7 * i], np.int32) for i in range(n)],
             protocol)
    return root


@pytest.mark.parametrize('split', ['train', 'test'])
def test_modelnet40_reads_dat_and_normalises(modelnet_root, split):
    ds = ModelNet40(str(modelnet_root), split=split, npoints=20)
    clouds, labels = load_numpy_pickle(str(modelnet_root / f'modelnet40_{split}_8192pts_fps.dat'))
    assert len(ds) == len(clouds) and ds.metainfo['classes'] == tuple(MODELNET_CLASSES)
    for i, cloud in enumerate(clouds):
        sample = ds[i]
        pts = sample['inputs']
        assert pts.shape == (20, 3) and pts.dtype == torch.float32
        assert sample['data_samples'] == int(labels[i][0]) == 7 * i
        assert torch.allclose(pts.mean(0), torch.zeros(3), atol=1e-5)
        assert math.isclose(float(pts.norm(dim=1).max()), 1.0, rel_tol=1e-5)
        xyz = cloud[:20, :3] - cloud[:20, :3].mean(0)  # the first 20 points, xyz only (normals dropped)
        assert np.allclose(pts.numpy(), xyz / np.linalg.norm(xyz, axis=1).max(), atol=1e-6)


def test_modelnet40_refuses_foreign_pickles_and_reports_layout(modelnet_root, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ('pwned',))

    _dat(modelnet_root / 'modelnet40_test_8192pts_fps.dat', [Payload()], [np.array([0])], 4)
    with pytest.raises(pickle.UnpicklingError, match='refusing to load builtins.print'):
        ModelNet40(str(modelnet_root), split='test')
    with pytest.raises(ValueError, match='npoints=64.*clouds of 40 points'):
        ModelNet40(str(modelnet_root), split='train', npoints=64)
    with pytest.raises(FileNotFoundError, match='modelnet40_shape_names.txt.*Point-BERT'):
        ModelNet40(str(tmp_path / 'empty'))


def test_built_from_config(modelnet_root):
    with DefaultScope.overwrite_default_scope('petl_vision'):
        ds = DATASETS.build(dict(type='ModelNet40', data_root=str(modelnet_root), npoints=30,
                                 pipeline=[dict(type='PointsSample', num_points=24),
                                           dict(type='PointsScaleTranslate')]))
    assert ds[0]['inputs'].shape == (24, 3)
    assert {'PointsSample', 'PointsRotate', 'PointsScaleTranslate'} <= set(TRANSFORMS.module_dict)


def _many(transform, n=4000):
    torch.manual_seed(0)
    pts = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    return torch.stack([transform({'inputs': pts.clone()})['inputs'] for _ in range(n)])  # (n, 2, 3)


def test_scale_translate_statistics():
    out = _many(PointsScaleTranslate())
    shift = out[:, 1]  # the origin moves by the translation only
    scale = out[:, 0] - shift  # (1, 1, 1) moves by scale + translation
    assert shift.min() >= -0.2 and shift.max() <= 0.2
    assert torch.allclose(shift.mean(0), torch.zeros(3), atol=0.01)
    assert scale.min() >= 2 / 3 and scale.max() <= 3 / 2
    assert torch.allclose(scale.mean(0), torch.full((3,), (2 / 3 + 3 / 2) / 2), atol=0.01)
    assert abs(float(torch.corrcoef(scale[:, :2].T)[0, 1])) < 0.05  # one draw per axis: anisotropic


def test_rotate_about_the_up_axis():
    out = _many(PointsRotate(axis=1))
    p = out[:, 0]
    assert torch.allclose(p[:, 1], torch.ones(len(p)))  # y untouched
    assert torch.allclose(p[:, [0, 2]].norm(dim=1), torch.full((len(p),), math.sqrt(2)), atol=1e-5)
    angles = torch.atan2(p[:, 0], p[:, 2])  # uniform over the circle
    hist = torch.histc(angles, bins=8, min=-math.pi, max=math.pi) / len(p)
    assert torch.allclose(hist, torch.full((8,), 1 / 8), atol=0.02)
    R = rotation_matrix(0.3, 1)
    c, s = math.cos(0.3), math.sin(0.3)  # Point-MAE's matrix
    assert torch.allclose(R, torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]]))
    with pytest.raises(ValueError, match='axis must be 0'):
        PointsRotate(axis=3)


def test_sample_is_uniform_without_replacement():
    torch.manual_seed(0)
    pts = torch.arange(10.0)[:, None].expand(10, 3)
    counts = torch.zeros(10)
    for _ in range(2000):
        out = PointsSample(4)({'inputs': pts})['inputs'][:, 0].long()
        assert len(set(out.tolist())) == 4
        counts[out] += 1
    assert torch.allclose(counts / 2000, torch.full((10,), 0.4), atol=0.04)
    with pytest.raises(ValueError, match='got a cloud of 10 points'):
        PointsSample(11)({'inputs': pts})


def test_scanobjectnn_h5_without_label_names_the_file_keys_and_layout(tmp_path):
    path = tmp_path / 'main_split' / 'test_objectdataset.h5'
    path.parent.mkdir(parents=True)
    with h5py.File(path, 'w') as f:  # as some converters write it: the labels under another name
        f['data'] = np.zeros((2, 16, 3), dtype=np.float32)
        f['labels'] = np.zeros(2, dtype=np.int64)
    with pytest.raises(ValueError) as err:
        ScanObjectNN(str(tmp_path), variant='OBJ_BG', split='test')
    message = str(err.value)
    assert f"{path} has no ['label'] (found ['data', 'labels'])" in message
    assert "'data' (S, 2048, 3) float points and 'label' (S,)" in message
