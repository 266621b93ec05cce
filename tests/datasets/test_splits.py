"""Held-out splits: defined once in the dataset bases (``data_split``), and a train split that shares items with a
live val split of the same source is refused, for every dataset that carves val out of its training data."""
import gc
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from petl_vision.datasets import CIFAR100, CUB200, DigitsShiftTarget, ImageFolder, SklearnDigits
from petl_vision.datasets.config_keys import merge_options
from petl_vision.registry import DATASETS
from tests.datasets.test_classification_datasets import write_cifar100, write_fgvc, write_png

BASES = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'datasets'


def build(loader: dict):
    with DefaultScope.overwrite_default_scope('petl_vision'):
        return DATASETS.build(loader['dataset'])


def cifar_config(root: Path, **options) -> Config:
    cfg = Config.fromfile(str(BASES / 'cifar100.py'))
    return merge_options(cfg, {'data_root': str(root), 'data_split.val_size': 200, **options})


def image_bytes(ds: CIFAR100) -> set[bytes]:
    return {ds.get_data_info(i)['img'].numpy().tobytes() for i in range(len(ds))}


def test_cifar100_config_defines_the_split_once(tmp_path):
    write_cifar100(tmp_path, n_train=1000, n_test=4)
    cfg = cifar_config(tmp_path, **{'data_split.seed': 3})
    assert cfg.train_dataloader.dataset.val_size == cfg.val_dataloader.dataset.val_size == 200
    assert cfg.train_dataloader.dataset.seed == cfg.val_dataloader.dataset.seed == 3
    train, val = build(cfg.train_dataloader), build(cfg.val_dataloader)
    assert (len(train), len(val)) == (800, 200)
    assert not image_bytes(train) & image_bytes(val)


@pytest.mark.parametrize(('override', 'shared'), [({'train_dataloader.dataset.val_size': 100}, 100),
                                                  ({'val_dataloader.dataset.seed': 1}, 161)])
def test_cifar100_train_and_val_drawn_differently_are_refused(tmp_path, override, shared):
    """The issue's two leaks: val_size or seed given to one loader only (silently 100 / 174 of 200 trained on)."""
    write_cifar100(tmp_path, n_train=1000, n_test=4)
    cfg = cifar_config(tmp_path, **override)
    train = build(cfg.train_dataloader)
    with pytest.raises(ValueError) as err:
        build(cfg.val_dataloader)
    message = str(err.value)
    assert f'shares {shared} of its 200 items' in message and 'cifar-100-python/train' in message
    assert 'data_split' in message and len(train) > 0


def test_cifar100_overlap_counts_match_the_drawn_indices(tmp_path):
    write_cifar100(tmp_path, n_train=1000, n_test=4)
    perm = np.random.default_rng(0).permutation(1000)
    train_100 = set(perm[100:].tolist())  # train of val_size=100, seed 0
    val_200 = set(perm[:200].tolist())  # val of val_size=200, seed 0
    val_seed1 = set(np.random.default_rng(1).permutation(1000)[:200].tolist())
    train_200 = set(perm[200:].tolist())
    assert len(train_100 & val_200) == 100 and len(train_200 & val_seed1) == 161


def test_finished_datasets_do_not_block_the_next_run(tmp_path):
    write_cifar100(tmp_path, n_train=50, n_test=4)
    train = CIFAR100(str(tmp_path), split='train', val_size=10, seed=0)
    del train
    gc.collect()
    assert len(CIFAR100(str(tmp_path), split='val', val_size=10, seed=1)) == 10  # a sweep's next run
    keep = CIFAR100(str(tmp_path), split='trainval')  # the final run trains on train + val: declared, allowed
    assert len(CIFAR100(str(tmp_path), split='val', val_size=10, seed=0)) == 10 and len(keep) == 50


def test_cifar100_reads_bytes_keys(tmp_path):
    data = write_cifar100(tmp_path, n_train=6, n_test=2)
    folder = tmp_path / 'cifar-100-python'
    for name in ('train', 'meta'):
        with open(folder / name, 'rb') as f:
            raw = pickle.load(f)
        as_bytes = {k.encode(): [v.encode() for v in vals] if k == 'fine_label_names' else vals
                    for k, vals in raw.items()}
        with open(folder / name, 'wb') as f:
            pickle.dump(as_bytes, f)
    ds = CIFAR100(str(tmp_path), split='trainval')
    assert len(ds) == 6 and ds.metainfo['classes'][:2] == ('class0', 'class1')
    assert ds.get_data_info(5)['gt_label'] == 35
    assert ds.get_data_info(5)['img'].numpy().tobytes() == data['train'][5].tobytes()


def test_cifar100_truncated_or_foreign_pickle_names_the_file(tmp_path):
    write_cifar100(tmp_path, n_train=6, n_test=2)
    path = tmp_path / 'cifar-100-python' / 'test'
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=f'CIFAR100: {path} is truncated or not a CIFAR python pickle'):
        CIFAR100(str(tmp_path), split='test')
    with open(path, 'wb') as f:
        pickle.dump({'pixels': [], 'labels': []}, f)
    with pytest.raises(ValueError, match=r"lacks \['data', 'fine_labels'\] \(found \['labels', 'pixels'\]\)"):
        CIFAR100(str(tmp_path), split='test')


def test_digits_and_demo_target_refuse_a_second_split_definition():
    train = SklearnDigits(split='train', seed=0)
    with pytest.raises(ValueError, match=r"sklearn.datasets.load_digits: split 'val' \(seed=1"):
        SklearnDigits(split='val', seed=1)
    assert len(SklearnDigits(split='val', seed=0)) > 0 and len(train) > 0
    target_train = DigitsShiftTarget(split='train', seed=0)
    with pytest.raises(ValueError, match=r"shares 64 of its 100 items with the live split 'train' \(seed=0\)"):
        DigitsShiftTarget(split='val', seed=1)
    assert len(DigitsShiftTarget(split='val', seed=0)) == 100 and len(target_train) == 200


def test_fgvc_split_files_listing_an_image_twice_are_refused(tmp_path):
    splits = write_fgvc(tmp_path, 'images')
    (tmp_path / 'val.json').write_text(json.dumps({**splits['val'], 'a/0.png': 10}))
    with pytest.raises(ValueError, match=r"train.json and val.json both list 1 items \(e.g. \['a/0.png'\]\)"):
        CUB200(str(tmp_path), split='train')


def write_folder(root: Path, per_class: dict[str, int]) -> None:
    for c, (name, n) in enumerate(per_class.items()):
        for i in range(n):
            write_png(root / name / f'{i:03d}.png', h=8, w=8, offset=40 * c + i)


def test_image_folder_seeded_split_is_disjoint_complete_and_refuses_a_second_seed(tmp_path):
    write_folder(tmp_path, {'cat': 10, 'dog': 5})
    parts = {s: ImageFolder(str(tmp_path), split=s, val_fraction=0.2, test_fraction=0.2) for s in
             ('train', 'val', 'test')}
    paths = {s: [Path(ds.get_data_info(i)['img_path']).relative_to(tmp_path).as_posix() for i in range(len(ds))]
             for s, ds in parts.items()}
    assert {s: len(p) for s, p in paths.items()} == {'train': 6 + 3, 'val': 2 + 1, 'test': 2 + 1}
    assert sorted(sum(paths.values(), [])) == sorted(f'{c}/{i:03d}.png' for c, n in (('cat', 10), ('dog', 5))
                                                     for i in range(n))
    with pytest.raises(ValueError, match=r"split 'val' \(seed=1, test_fraction=0.2, val_fraction=0.2\) shares"):
        ImageFolder(str(tmp_path), split='val', seed=1, val_fraction=0.2, test_fraction=0.2)


def test_image_folder_split_files_are_used_and_checked(tmp_path):
    write_folder(tmp_path, {'a': 3, 'b': 3})
    (tmp_path / 'train.txt').write_text('a/000.png\na/001.png\nb/000.png\nb/001.png\n')
    (tmp_path / 'val.txt').write_text('a/002.png\nb/002.png\n')
    val = ImageFolder(str(tmp_path), split='val')
    assert [val.get_data_info(i)['gt_label'] for i in range(2)] == [0, 1] and val.metainfo['classes'] == ('a', 'b')
    assert len(ImageFolder(str(tmp_path), split='trainval')) == 6
    with pytest.raises(FileNotFoundError, match=r"has split files \['train.txt', 'val.txt'\] but not \['test.txt'\]"):
        ImageFolder(str(tmp_path), split='test')
    (tmp_path / 'val.txt').write_text('a/002.png\nb/001.png\n')
    with pytest.raises(ValueError, match=r'train.txt and val.txt both list 1 items'):
        ImageFolder(str(tmp_path), split='train')
