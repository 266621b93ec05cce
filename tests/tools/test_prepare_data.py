"""tools/prepare_data.py on tiny fake official layouts (CUB index files, Flowers/Dogs/Cars .mat files, NOAH lists)."""
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from petl_vision.datasets import CUB200
from petl_vision.datasets.fgvc_prepare import read_cars, read_dogs, read_flowers, vpt_splits
from tests.conftest import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('prepare_data.py')


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (4, 3), (10, 20, 30)).save(path)


def write_cub(root: Path, train_per_class: dict[int, int], test_per_class: int = 2) -> None:
    """CUB-200-2011's images.txt, image_class_labels.txt, train_test_split.txt and images/<class folder>/*.jpg."""
    rows, image_id = [], 1
    for c, n_train in train_per_class.items():
        for i in range(n_train + test_per_class):
            rows.append((image_id, f'{c:03d}.Bird_{c}/Bird_{c}_{i:04d}.jpg', c, int(i < n_train)))
            image_id += 1
    (root / 'images.txt').write_text(''.join(f'{i} {p}\n' for i, p, _, _ in rows))
    (root / 'image_class_labels.txt').write_text(''.join(f'{i} {c}\n' for i, _, c, _ in rows))
    (root / 'train_test_split.txt').write_text(''.join(f'{i} {t}\n' for i, _, _, t in rows))
    for _, path, _, _ in rows:
        write_image(root / 'images' / path)


def test_cub_splits_val_off_train_per_class(tool, tmp_path, capsys):
    write_cub(tmp_path, {1: 10, 2: 15})  # val: round(1.0) = 1 and round half up(1.5) = 2
    assert tool.main(['cub', '--root', str(tmp_path), '--skip-count-check']) == 0
    splits = {s: json.loads((tmp_path / f'{s}.json').read_text()) for s in ('train', 'val', 'test')}
    assert [len(splits[s]) for s in ('train', 'val', 'test')] == [22, 3, 4]
    assert sorted(splits['val'].values()) == [1, 2, 2]
    assert not splits['train'].keys() & splits['val'].keys()
    assert all(p.startswith(f'{c:03d}.Bird_{c}/') for p, c in splits['train'].items())
    assert 'train 22, val 3, test 4; 2 classes' in capsys.readouterr().out
    first_val = dict(splits['val'])
    assert tool.main(['cub', '--root', str(tmp_path), '--skip-count-check']) == 0  # same seed, same split
    assert json.loads((tmp_path / 'val.json').read_text()) == first_val
    trainval = CUB200(data_root=str(tmp_path), split='trainval')
    assert len(trainval) == 25 and trainval.metainfo['classes'] == ('1', '2')


def test_cub_official_counts_are_checked(tool, tmp_path, capsys):
    write_cub(tmp_path, {1: 3})
    assert tool.main(['cub', '--root', str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert 'train: 3 images, expected 5,994; test: 2 images, expected 5,794' in out
    assert '--skip-count-check' in out and not (tmp_path / 'train.json').exists()


def test_cub_missing_images_and_annotations_are_reported(tool, tmp_path, capsys):
    assert tool.main(['nabirds', '--root', str(tmp_path)]) == 1
    assert "lacks ['images.txt', 'image_class_labels.txt', 'train_test_split.txt']" in capsys.readouterr().out
    write_cub(tmp_path, {4: 2})
    (tmp_path / 'images' / '004.Bird_4' / 'Bird_4_0001.jpg').unlink()
    assert tool.main(['cub', '--root', str(tmp_path), '--skip-count-check']) == 1
    assert '1 listed images are missing' in capsys.readouterr().out


def test_mat_readers_of_flowers_dogs_cars(tmp_path):
    scipy.io.savemat(tmp_path / 'imagelabels.mat', {'labels': np.array([[3, 1, 2, 3]], dtype=np.uint8)})
    scipy.io.savemat(tmp_path / 'setid.mat', {'trnid': np.array([[1]]), 'valid': np.array([[2, 3]]),
                                              'tstid': np.array([[4]])})
    flowers = read_flowers(str(tmp_path))
    assert flowers == {'train': {'jpg/image_00001.jpg': 3},
                       'val': {'jpg/image_00002.jpg': 1, 'jpg/image_00003.jpg': 2},
                       'test': {'jpg/image_00004.jpg': 3}}
    assert vpt_splits(flowers) == flowers  # the official val is kept

    for split, files, labels in (('train', ['n1-a/x_1.jpg', 'n2-b/y_1.jpg'], [1, 2]), ('test', ['n1-a/x_2.jpg'], [1])):
        cells = np.empty((len(files), 1), dtype=object)  # MATLAB cell array of 1-element cells
        for i, f in enumerate(files):
            cells[i, 0] = np.array([f])
        scipy.io.savemat(tmp_path / f'{split}_list.mat', {'file_list': cells, 'labels': np.array([labels]).T})
    assert read_dogs(str(tmp_path)) == {'train': {'n1-a/x_1.jpg': 1, 'n2-b/y_1.jpg': 2}, 'test': {'n1-a/x_2.jpg': 1}}

    (tmp_path / 'devkit').mkdir()
    fields = [('bbox_x1', 'O'), ('bbox_y1', 'O'), ('class', 'O'), ('fname', 'O')]
    for path, names, classes in ((tmp_path / 'devkit' / 'cars_train_annos.mat', ['00001.jpg', '00002.jpg'], [5, 196]),
                                 (tmp_path / 'cars_test_annos_withlabels.mat', ['00001.jpg'], [7])):
        annos = np.zeros((1, len(names)), dtype=fields)  # 1 x N struct array
        annos['fname'], annos['class'], annos['bbox_x1'], annos['bbox_y1'] = [names], [classes], 0, 0
        scipy.io.savemat(path, {'annotations': annos})
    assert read_cars(str(tmp_path)) == {'train': {'cars_train/00001.jpg': 5, 'cars_train/00002.jpg': 196},
                                        'test': {'cars_test/00001.jpg': 7}}


def write_vtab_task(root: Path, task: str, num_test: int = 3, bad_label: int | None = None) -> None:
    """NOAH lists with the exact sizes; lines cycle over 4 images per split folder."""
    for split, n in (('train800', 800), ('val200', 200), ('train800val200', 1000), ('test', num_test)):
        for i in range(min(n, 4)):
            write_image(root / task / 'images' / split / f'{i:06d}.jpg')
        labels = [i % 2 for i in range(n)]
        if bad_label is not None and split == 'val200':
            labels[0] = bad_label
        lines = ''.join(f'images/{split}/{i % 4:06d}.jpg {label}\n' for i, label in enumerate(labels))
        (root / task / f'{split}.txt').write_text(lines)


def test_vtab_check_passes_complete_task(tool, tmp_path, capsys):
    write_vtab_task(tmp_path, 'kitti')
    assert tool.main(['vtab', '--root', str(tmp_path), '--tasks', 'kitti']) == 0
    out = capsys.readouterr().out
    assert 'get_vtab1k.py' in out and 'all 1 tasks complete' in out


def test_vtab_check_reports_counts_labels_and_missing_tasks(tool, tmp_path, capsys):
    write_vtab_task(tmp_path, 'patch_camelyon', bad_label=2)
    write_vtab_task(tmp_path, 'eurosat', num_test=0)
    lines = (tmp_path / 'patch_camelyon' / 'train800.txt').read_text().splitlines(keepends=True)
    (tmp_path / 'patch_camelyon' / 'train800.txt').write_text(''.join(lines[:799]))
    assert tool.main(['vtab', '--root', str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert 'train800.txt has 799 lines, expected 800' in out
    assert 'val200.txt labels [2] outside 0..1' in out
    assert 'test.txt has 0 lines, expected > 0' in out
    assert out.count(': folder ') == 17 and f'dtd: folder {tmp_path / "dtd"} missing' in out
    assert '19 of 19 VTAB-1k tasks are incomplete' in out


def test_digits_needs_no_preparation(tool, capsys):
    assert tool.main(['digits']) == 0
    assert "{'train': 1086, 'val': 176, 'test': 535}" in capsys.readouterr().out
