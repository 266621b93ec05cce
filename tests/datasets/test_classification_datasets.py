"""Classification datasets and transforms on tiny fixtures written in each dataset's real on-disk format."""
import json
import pickle

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from PIL import Image

from petl_vision.datasets import (CIFAR100, CUB200, VTAB1k, CenterCrop, LoadImage, OxfordFlowers, PackInputs,
                                  RandomCrop, RandomFlip, RandomResizedCrop, Resize, SklearnDigits, StanfordDogs)
from petl_vision.registry import TRANSFORMS


def pattern_image(h: int, w: int, offset: int = 0) -> np.ndarray:
    """uint8 (h, w, 3) with pixel (y, x, c) = (offset + 7 y + 3 x + 50 c) mod 256."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing='ij')
    return ((offset + 7 * y + 3 * x + 50 * c) % 256).astype(np.uint8)


def write_png(path, h: int = 6, w: int = 10, offset: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = pattern_image(h, w, offset)
    Image.fromarray(img).save(path)
    return img


# ---------------------------------------------------------------- CIFAR-100


def write_cifar100(root, n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    folder = root / 'cifar-100-python'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (('train', n_train), ('test', n_test)):
        data[split] = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [(7 * i) % 100 for i in range(n)]
        with open(folder / split, 'wb') as f:
            pickle.dump({'data': data[split], 'fine_labels': labels, 'coarse_labels': [0] * n,
                         'filenames': [f'{i}.png' for i in range(n)]}, f)
    with open(folder / 'meta', 'wb') as f:
        pickle.dump({'fine_label_names': [f'class{i}' for i in range(100)], 'coarse_label_names': []}, f)
    return data


def test_cifar100_reads_pickles_as_chw_images(tmp_path):
    data = write_cifar100(tmp_path)
    ds = CIFAR100(data_root=str(tmp_path), split='trainval', pipeline=[PackInputs()])
    assert len(ds) == 5 and not ds.complete
    assert ds.metainfo['classes'][:2] == ('class0', 'class1') and len(ds.metainfo['classes']) == 100
    sample = ds[3]
    assert sample['data_samples'] == 21  # 7 * 3
    img = sample['inputs']
    assert img.dtype == torch.uint8 and img.shape == (3, 32, 32)
    # rows are R, G, B planes of 32 x 32 in row-major order
    assert img[1, 2, 5] == data['train'][3, 1024 + 2 * 32 + 5]
    assert torch.equal(img.flatten(), torch.from_numpy(data['train'][3]))
    assert len(CIFAR100(data_root=str(tmp_path), split='test')) == 3


def test_cifar100_missing_folder_names_layout_and_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CIFAR100(data_root=str(tmp_path), split='test')
    message = str(err.value)
    assert 'cifar-100-python/test' in message and 'cifar-100-python/meta' in message
    assert f'python tools/prepare_data.py cifar100 --root {tmp_path}' in message


def test_cifar100_val_is_a_seeded_held_out_part_of_train(tmp_path):
    write_cifar100(tmp_path, n_train=10)

    def labels(split, **kw):
        ds = CIFAR100(data_root=str(tmp_path), split=split, val_size=3, **kw)
        return [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
    train, val = labels('train'), labels('val')
    assert len(train) == 7 and len(val) == 3
    assert sorted(train + val) == sorted(labels('trainval'))  # disjoint and complete (labels are 3 * index)
    assert labels('val') == val and labels('val', seed=1) != val


def test_cifar100_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="one of \\('train', 'val', 'trainval', 'test'\\)"):
        CIFAR100(data_root=str(tmp_path), split='minival')


# ---------------------------------------------------------------- FGVC (VPT json splits)


def write_fgvc(root, image_dir: str) -> dict[str, dict[str, int]]:
    """Sparse, unsorted class ids 10, 3, 7; class 7 appears only in test."""
    splits = {'train': {'a/0.png': 10, 'b/1.png': 3, 'a/2.png': 10},
              'val': {'b/3.png': 3},
              'test': {'c/4.png': 7, 'a/5.png': 10}}
    for split, annotations in splits.items():
        (root / f'{split}.json').write_text(json.dumps(annotations))
        for i, path in enumerate(annotations):
            write_png(root / image_dir / path, offset=i)
    return splits


@pytest.mark.parametrize('cls,image_dir', [(CUB200, 'images'), (StanfordDogs, 'Images'), (OxfordFlowers, '')])
def test_fgvc_remaps_ids_over_all_splits_and_finds_images(tmp_path, cls, image_dir):
    write_fgvc(tmp_path, image_dir)
    train = cls(data_root=str(tmp_path), split='train')
    assert train.metainfo['classes'] == ('3', '7', '10')  # labels 0, 1, 2
    assert [train.get_data_info(i)['gt_label'] for i in range(len(train))] == [2, 0, 2]
    assert train.get_data_info(1)['img_path'] == str(tmp_path / image_dir / 'b/1.png').replace('/./', '/')
    test = cls(data_root=str(tmp_path), split='test', pipeline=[LoadImage(), PackInputs()])
    assert [test.get_data_info(i)['gt_label'] for i in range(2)] == [1, 2]
    sample = test[0]
    assert sample['data_samples'] == 1
    assert torch.equal(sample['inputs'], torch.from_numpy(pattern_image(6, 10, 0)).permute(2, 0, 1))
    trainval = cls(data_root=str(tmp_path), split='trainval')
    assert len(trainval) == 4 and trainval.get_data_info(3)['gt_label'] == 0


def test_fgvc_class_counts_of_full_datasets():
    from petl_vision.datasets import NABirds, StanfordCars
    assert {c.__name__: c.NUM_CLASSES for c in (CUB200, NABirds, OxfordFlowers, StanfordDogs, StanfordCars)} == {
        'CUB200': 200, 'NABirds': 555, 'OxfordFlowers': 102, 'StanfordDogs': 120, 'StanfordCars': 196}


def test_fgvc_missing_split_file_names_layout_and_command(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'train.json').write_text('{}')
    with pytest.raises(FileNotFoundError) as err:
        CUB200(data_root=str(tmp_path), split='train')
    message = str(err.value)
    assert message.startswith('CUB200: val.json, test.json not found')
    assert 'image root: images/' in message
    assert f'python tools/prepare_data.py cub --root {tmp_path}' in message


def test_fgvc_lazy_init_defers_reading(tmp_path):
    ds = CUB200(data_root=str(tmp_path), split='val', lazy_init=True)  # nothing there yet: no error
    write_fgvc(tmp_path, 'images')
    assert len(ds) == 1 and ds.get_data_info(0)['gt_label'] == 0


# ---------------------------------------------------------------- VTAB-1k (NOAH layout)


def write_vtab_task(root, task: str, labels: dict[str, list[int]]) -> None:
    for split_file, split_labels in labels.items():
        folder = split_file.removesuffix('.txt')
        lines = []
        for i, label in enumerate(split_labels):
            rel = f'images/{folder}/{i:06d}.jpg'
            path = root / task / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern_image(4, 4, i)).save(path, quality=95)
            lines.append(f'{rel} {label}\n')
        (root / task / split_file).write_text(''.join(lines))


def test_vtab_reads_noah_lists(tmp_path):
    write_vtab_task(tmp_path, 'kitti', {'train800.txt': [0, 3, 1], 'val200.txt': [2],
                                        'train800val200.txt': [0, 3, 1, 2], 'test.txt': [1, 1]})
    ds = VTAB1k(data_root=str(tmp_path), task='kitti', split='trainval',
                pipeline=[LoadImage(), Resize((8, 8)), PackInputs()])
    assert ds.metainfo == {'classes': ('0', '1', '2', '3'), 'task': 'kitti', 'group': 'structured'}
    assert [ds.get_data_info(i)['gt_label'] for i in range(len(ds))] == [0, 3, 1, 2]
    assert ds.get_data_info(1)['img_path'] == str(tmp_path / 'kitti/images/train800val200/000001.jpg')
    assert ds[1]['inputs'].shape == (3, 8, 8)
    assert len(VTAB1k(data_root=str(tmp_path), task='kitti', split='test')) == 2


def test_vtab_rejects_unknown_task_and_bad_labels(tmp_path):
    with pytest.raises(KeyError, match="unknown VTAB-1k task 'cifar10'.*'cifar'"):
        VTAB1k(data_root=str(tmp_path), task='cifar10')
    with pytest.raises(KeyError, match="use task='oxford_iiit_pet'"):
        VTAB1k(data_root=str(tmp_path), task='oxford_pet')
    write_vtab_task(tmp_path, 'patch_camelyon', {'val200.txt': [0, 2]})
    with pytest.raises(ValueError, match='labels outside 0..1'):
        VTAB1k(data_root=str(tmp_path), task='patch_camelyon', split='val')


def test_vtab_missing_list_names_layout_and_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        VTAB1k(data_root=str(tmp_path), task='dtd', split='test')
    assert 'VTAB1k(dtd): dtd/test.txt not found' in str(err.value)
    assert f'python tools/prepare_data.py vtab --root {tmp_path}' in str(err.value)


def test_vtab_task_table_matches_noah():
    from petl_vision.datasets import VTAB_TASKS
    groups = [g for g, _ in VTAB_TASKS.values()]
    assert (groups.count('natural'), groups.count('specialized'), groups.count('structured')) == (7, 4, 8)
    assert [n for _, n in VTAB_TASKS.values()] == [100, 102, 47, 102, 37, 10, 397, 2, 10, 45, 5, 8, 6, 6, 4, 16, 16,
                                                  18, 9]


# ---------------------------------------------------------------- scikit-learn digits


def source_indices(ds: SklearnDigits) -> list[int]:
    return [ds.get_data_info(i)['source_idx'] for i in range(len(ds))]


def test_digits_splits_are_disjoint_complete_and_seeded():
    from sklearn.datasets import load_digits
    target = load_digits().target
    idx = {s: source_indices(SklearnDigits(split=s)) for s in SklearnDigits.SPLITS}
    assert sorted(sum(idx.values(), [])) == list(range(1797))
    counts = np.bincount(target)  # 178, 182, ... per digit
    assert len(idx['test']) == sum(int(n * 0.3) for n in counts)
    assert len(idx['val']) == sum(int(n * 0.1) for n in counts)
    assert sorted(source_indices(SklearnDigits(split='test', seed=1))) != sorted(idx['test'])


def test_digits_subset_labels_and_nested_shots():
    from sklearn.datasets import load_digits
    target = load_digits().target
    five = SklearnDigits(split='train', classes=(9, 5), shots_per_class=5)
    ten = SklearnDigits(split='train', classes=(9, 5), shots_per_class=10)
    assert five.metainfo['classes'] == ('9', '5') and len(five) == 10 and len(ten) == 20
    infos = [five.get_data_info(i) for i in range(len(five))]
    assert all(target[d['source_idx']] == (9, 5)[d['gt_label']] for d in infos)
    assert {d['source_idx'] for d in infos} <= set(source_indices(ten))
    # a digit's split does not depend on which other digits are chosen
    digit9 = set(source_indices(SklearnDigits(split='train', classes=(9,))))
    assert {d['source_idx'] for d in infos if d['gt_label'] == 0} <= digit9
    with pytest.raises(ValueError, match='fewer than shots_per_class=500'):
        SklearnDigits(split='train', classes=(1,), shots_per_class=500)


def test_digits_images_are_scaled_greyscale_rgb():
    from sklearn.datasets import load_digits
    images = load_digits().images
    ds = SklearnDigits(split='val', img_size=8, pipeline=[PackInputs()])  # same size: bilinear is the identity
    info = ds.get_data_info(0)
    expected = torch.from_numpy(np.round(images[info['source_idx']] / 16 * 255).astype(np.uint8))
    sample = ds[0]
    assert sample['inputs'].dtype == torch.uint8 and sample['inputs'].shape == (3, 8, 8)
    assert all(torch.equal(sample['inputs'][c], expected) for c in range(3))
    assert SklearnDigits(split='val', pipeline=[PackInputs()])[0]['inputs'].shape == (3, 32, 32)


# ---------------------------------------------------------------- transforms and collation


def test_load_image_converts_grey_png_to_rgb(tmp_path):
    grey = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    Image.fromarray(grey, mode='L').save(tmp_path / 'g.png')
    out = LoadImage()({'img_path': str(tmp_path / 'g.png')})
    assert out['img'].shape == (3, 3, 4) and out['ori_shape'] == (3, 4)
    assert all(torch.equal(out['img'][c], torch.from_numpy(grey)) for c in range(3))


def test_geometric_transforms_sizes_and_values():
    img = torch.from_numpy(pattern_image(20, 40)).permute(2, 0, 1).contiguous()  # (3, 20, 40)
    assert Resize(10)({'img': img})['img'].shape == (3, 10, 20)  # shorter side 10, aspect kept
    assert Resize([12, 14])({'img': img})['img'].shape == (3, 12, 14)
    assert torch.equal(CenterCrop(4)({'img': img})['img'], img[:, 8:12, 18:22])
    assert torch.equal(RandomFlip(prob=1.0)({'img': img})['img'], img.flip(-1))
    assert torch.equal(RandomFlip(prob=0.0)({'img': img})['img'], img)
    assert RandomResizedCrop(16)({'img': img})['img'].shape == (3, 16, 16)
    crop = RandomCrop(5)({'img': img})['img']
    windows = img.unfold(1, 5, 1).unfold(2, 5, 1)  # (3, 16, 36, 5, 5)
    assert any(torch.equal(windows[:, i, j], crop) for i in range(16) for j in range(36))


def test_pipeline_from_config_and_default_collate(tmp_path):
    write_fgvc(tmp_path, 'images')
    pipeline = [dict(type='LoadImage'), dict(type='Resize', size=(8, 8)), dict(type='RandomFlip'),
                dict(type='PackInputs')]
    with DefaultScope.overwrite_default_scope('petl_vision'):
        ds = CUB200(data_root=str(tmp_path), split='train', pipeline=pipeline)
        assert TRANSFORMS.get('Resize') is Resize
    batch = default_collate([ds[i] for i in range(3)])
    assert batch['inputs'].shape == (3, 3, 8, 8) and batch['inputs'].dtype == torch.uint8
    assert batch['data_samples'].dtype == torch.int64 and batch['data_samples'].tolist() == [2, 0, 2]


def test_random_affine_identity_draw_and_uint8_transform():
    from petl_vision.datasets.transforms import RandomAffine, random_affine

    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(random_affine(x, degrees=0, translate=0, scale=(1, 1)), x, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    moved = random_affine(x, generator=g)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    # a constant image stays constant: the border is repeated, no black corners appear
    flat = torch.full((1, 3, 8, 8), 0.7)
    torch.testing.assert_close(random_affine(flat, degrees=30, generator=g), flat)
    img = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    out = RandomAffine()({'img': img})['img']
    assert out.dtype == torch.uint8 and out.shape == (3, 8, 8)
