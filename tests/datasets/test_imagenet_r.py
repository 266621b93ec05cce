"""ImageNet-R: the imagenet-r/<wnid>/*.jpg layout, a seeded 80/20 split of every class (disjoint, recorded), a
clear error when the folder is missing, and the registry."""
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image

from petl_vision.datasets import ImageNetR
from petl_vision.registry import DATASETS

WNIDS = ('n01443537', 'n01484850', 'n01494475')


def write_imagenet_r(root, per_class: int = 10) -> None:
    rng = np.random.default_rng(0)
    for wnid in WNIDS:
        folder = root / 'imagenet-r' / wnid
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(folder / f'art_{i}.jpg')


def infos(ds) -> list[dict]:
    return [ds.get_data_info(i) for i in range(len(ds))]


def test_seeded_80_20_split_per_class(tmp_path):
    write_imagenet_r(tmp_path)
    train, test = ImageNetR(str(tmp_path), 'train'), ImageNetR(str(tmp_path), 'test')
    assert train.metainfo['classes'] == WNIDS and len(train) == 24 and len(test) == 6
    paths = {s: [d['img_path'] for d in infos(ds)] for s, ds in (('train', train), ('test', test))}
    assert not set(paths['train']) & set(paths['test'])
    assert [sum(d['gt_label'] == c for d in infos(test)) for c in range(3)] == [2, 2, 2]
    assert all('/imagenet-r/' in p for p in paths['test'])
    again = ImageNetR(str(tmp_path), 'test')
    assert [d['img_path'] for d in infos(again)] == paths['test']
    del train, test, again
    other = ImageNetR(str(tmp_path), 'test', seed=1)
    assert [d['img_path'] for d in infos(other)] != paths['test']


def test_a_live_split_refuses_another_seed(tmp_path):
    write_imagenet_r(tmp_path)
    train = ImageNetR(str(tmp_path), 'train', seed=0)
    with pytest.raises(ValueError, match='held-out data would be trained on'):
        ImageNetR(str(tmp_path), 'test', seed=1)
    assert len(train) == 24


def test_missing_folder_names_the_layout_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)imagenet-r/ not found in data_root=.*imagenet-r\.tar"):
        ImageNetR(str(tmp_path), 'train')
    with pytest.raises(ValueError, match="'train' or 'test'"):
        ImageNetR(str(tmp_path), 'val')


def test_registered_and_built_from_config(tmp_path):
    write_imagenet_r(tmp_path, per_class=5)
    with DefaultScope.overwrite_default_scope('petl_vision'):
        ds = DATASETS.build(dict(type='ImageNetR', data_root=str(tmp_path), split='test',
                                 pipeline=[dict(type='LoadImage'), dict(type='Resize', size=(8, 8)),
                                           dict(type='PackInputs')]))
    assert len(ds) == 3 and ds[0]['inputs'].shape == (3, 8, 8) and ds[0]['data_samples'] == 0
