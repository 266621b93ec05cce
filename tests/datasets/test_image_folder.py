"""Bring your own data: an ImageFolder on disk tuned through the shipped own-folder config by tools/train.py, with
the dataset bases' single keys (data_root, img_size, num_classes) reaching every loader."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from petl_vision.datasets import ImageFolder
from petl_vision.datasets.config_keys import loader_datasets, merge_options
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs' / 'imagefolder' / 'lora_vit-b16-in21k_imagefolder.py'
BASES = ROOT / 'configs' / '_base_' / 'datasets'


def write_image_folder(root: Path, classes=('red', 'green', 'blue'), per_class: int = 10) -> None:
    """``root/<class>/<i>.png``: 20 x 24 RGB images, bright in the class's own channel."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (20, 24, 3), dtype=np.uint8)
            img[..., c] += 180
            Image.fromarray(img).save(root / name / f'{i}.png')


def test_image_folder_reads_classes_and_images(tmp_path):
    write_image_folder(tmp_path, per_class=5)
    (tmp_path / 'notes.txt').write_text('not an image')
    (tmp_path / 'empty').mkdir()
    ds = ImageFolder(str(tmp_path), split='train', val_fraction=0.2)
    assert ds.metainfo['classes'] == ('blue', 'green', 'red')  # sorted; folders without images are skipped
    assert len(ds) == 3 * 4 and [ds.get_data_info(i)['gt_label'] for i in (0, 4, 8)] == [0, 1, 2]
    with pytest.raises(ValueError, match=r"split 'test' is empty: the seeded split gives it no image"):
        ImageFolder(str(tmp_path), split='test')
    with pytest.raises(FileNotFoundError, match='no class folder with images'):
        ImageFolder(str(tmp_path / 'empty'))


@pytest.mark.parametrize('base', ['cifar100.py', 'cub.py', 'vtab1k.py', 'imagefolder.py', 'modelnet40.py',
                                  'scanobjectnn_objbg.py', 'nyud_mt.py'])
def test_data_root_is_one_key_in_every_dataset_base(base):
    cfg = Config.fromfile(str(BASES / base))
    Config.merge_from_dict(cfg, {'data_root': '/my/data'})  # mmengine alone: the loaders keep the old root
    assert {d['data_root'] for d in loader_datasets(cfg)} != {'/my/data'}
    cfg = merge_options(Config.fromfile(str(BASES / base)), {'data_root': '/my/data'})
    assert {d['data_root'] for d in loader_datasets(cfg)} == {'/my/data'}
    assert all(cfg[f'{s}_dataloader'].dataset.data_root == '/my/data' for s in ('train', 'val', 'test'))


def test_img_size_scales_every_pipeline_size():
    cfg = merge_options(Config.fromfile(str(BASES / 'cub.py')), {'img_size': 112})
    sizes = [[t.get('size') for t in d['pipeline'] if 'size' in t] for d in loader_datasets(cfg)]
    assert sizes == [[128, 112]] * 3  # VPT's resize 256 before the 224 crop, halved
    cifar = merge_options(Config.fromfile(str(BASES / 'cifar100.py')), {'img_size': 32})
    assert [d['pipeline'][0]['size'] for d in loader_datasets(cifar)] == [[32, 32]] * 3
    dense = Config.fromfile(str(BASES / 'nyud_mt.py'))
    dense.model = dict(backbone=dict(model='swin_tiny_patch4_window7_224', img_size=448))
    merge_options(dense, {'img_size': 224})
    assert dense.model.backbone.img_size == 224 and dense.train_dataloader.dataset.pipeline[1]['crop_size'] == 224
    with pytest.raises(KeyError, match=r"\['img_size'\]: this config declares no such top-level key"):
        merge_options(Config.fromfile(str(BASES / 'modelnet40.py')), {'img_size': 64})


def test_tools_train_tunes_a_preset_on_an_image_folder(tmp_path, monkeypatch):
    """The README's own-folder command (plus the demo backbone at 32 px and no workers, for a test)."""
    data, work = tmp_path / 'photos', tmp_path / 'work'
    write_image_folder(data)
    argv = ['train.py', str(CONFIG), '--work-dir', str(work), '--cfg-options', f'data_root={data}', 'num_classes=3',
            'train_cfg.max_epochs=2', 'img_size=32', 'model.backbone.model=vit_digits_demo',
            'model.backbone.pretrained=True', 'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0']
    monkeypatch.setattr(sys, 'argv', argv)
    train = load_tool('train.py')
    cfg = train.build_config(train.parse_args())
    assert cfg.train_dataloader.persistent_workers is False and cfg.val_dataloader.persistent_workers is False
    assert cfg.model.backbone.num_classes == 3 and cfg.model.backbone.img_size == 32
    assert cfg.test_dataloader.dataset.data_root == str(data)
    train.main()
    best = json.loads((work / 'tuners_best.json').read_text())
    assert 0.0 <= best['accuracy/top1'] <= 100.0
    assert (work / 'tuners_best.safetensors').stat().st_size > 0
    scalars = [json.loads(line) for line in next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    val_steps = [row for row in scalars if 'accuracy/top1' in row]
    assert len(val_steps) == 2  # validated after each of the 2 epochs, on the 6 held-out images (20 % of 3 x 10)
