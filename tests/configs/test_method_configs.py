"""The per-method configs under configs/<method>/ are the recipe table of tools/misc/make_method_configs.py.

Checks that table and files never drift (byte for byte) and that every config loads with mmengine and
says what the table says: preset, head size, lr / weight decay, VTAB task, model selection on val.
"""
from pathlib import Path

import pytest
from mmengine.config import Config

from petl_vision import list_presets
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'

gen = load_tool('misc/make_method_configs.py')

CASES = [(m, d) for m in gen.METHODS for d in gen.DATASETS]
# Config.fromfile costs ~0.1 s: load a sample that covers every recipe branch (CIFAR-100, FGVC, VTAB tasks with
# 100 / 200 / 250-epoch schedules); the text check and the byte-for-byte test cover all 325 files.
LOADED = [(m, d) for m, d in CASES if d in ('cifar100', 'cub', 'cars', 'cifar', 'kitti', 'dsprites_ori')]


def test_table_covers_every_preset_and_dataset():
    assert sorted(gen.METHODS) == list_presets()
    assert len(gen.DATASETS) == 6 + 19
    assert all(set(gen.RECIPES[m]) == set(gen.DATASETS) for m in gen.METHODS)
    for method, dataset in CASES:
        recipe = gen.RECIPES[method][dataset]
        assert recipe['lr'] > 0 and recipe['weight_decay'] >= 0 and recipe['source'], (method, dataset)


def test_generator_reproduces_committed_configs(tmp_path):
    written = gen.write_configs(tmp_path)
    assert len(written) == len(CASES) == 325
    for path in written:
        committed = CONFIGS / path.relative_to(tmp_path)
        assert committed.exists(), f'{committed} missing: run python tools/misc/make_method_configs.py'
        assert committed.read_bytes() == path.read_bytes(), \
            f'{committed} differs from the recipe table: edit RECIPES and re-run tools/misc/make_method_configs.py'
    generated = {p.relative_to(tmp_path) for p in written}
    for method in gen.METHODS:
        stale = {p.relative_to(CONFIGS) for p in (CONFIGS / method).rglob('*.py')} - generated
        assert not stale, f'configs not produced by the generator: {sorted(stale)}'


def test_every_config_text_matches_recipe():
    for method, dataset in CASES:
        recipe = gen.RECIPES[method][dataset]
        text = (CONFIGS / gen.config_path(method, dataset)).read_text()
        for expected in (f"plan='{method}'", f'num_classes={gen.NUM_CLASSES[dataset]}', f"lr={recipe['lr']!r},",
                         f"weight_decay={recipe['weight_decay']!r})", f"suite = dict(method='{method}'"):
            assert expected in text, (method, dataset, expected)
        assert 'split=' not in text, 'splits come from the dataset bases (val for selection, test held out)'
        if dataset in gen.VTAB_TASKS:
            assert text.count(f"task='{dataset}'") == 3, (method, dataset)


@pytest.mark.parametrize(('method', 'dataset'), LOADED, ids=[f'{m}-{d}' for m, d in LOADED])
def test_config_loads_and_matches_recipe(method, dataset):
    cfg = Config.fromfile(str(CONFIGS / gen.config_path(method, dataset)))
    recipe = gen.RECIPES[method][dataset]
    assert cfg.model.plan == method and method in list_presets()
    assert cfg.model.backbone.num_classes == gen.NUM_CLASSES[dataset]
    assert cfg.suite == dict(method=method, dataset=dataset)
    # model selection on val; test is evaluated once, never selected on
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.test_dataloader.dataset.split == 'test'
    assert cfg.train_dataloader.dataset.split == 'train'
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == recipe.get('optimizer', 'AdamW')
    assert (optimizer.lr, optimizer.weight_decay) == (recipe['lr'], recipe['weight_decay'])
    assert cfg.optim_wrapper.constructor == 'TrainableOptimWrapperConstructor'
    if 'batch_size' in recipe:
        assert cfg.train_dataloader.batch_size == recipe['batch_size']
    if 'label_smoothing' in recipe:
        assert cfg.model.label_smoothing == recipe['label_smoothing']
    if 'drop_path' in recipe:
        assert cfg.model.backbone.drop_path_rate == recipe['drop_path']
    epochs, warmup = recipe.get('epochs', 100), recipe.get('warmup', 10)
    assert cfg.train_cfg.max_epochs == epochs
    linear, cosine = cfg.param_scheduler
    assert (linear.begin, linear.end) == (0, warmup)
    assert cosine.begin == warmup and 'end' not in cosine and 'T_max' not in cosine  # to train_cfg.max_epochs
    if dataset in gen.VTAB_TASKS:
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert cfg[loader].dataset.task == dataset, loader
