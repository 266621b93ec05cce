"""The training path end to end: the real dataset configs of configs/_base_/datasets on tiny fixture data written in
each dataset's on-disk format, a tiny ViT, mmengine's Runner (train -> val -> best tuner file -> test), and every
method's config running one iteration."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import petl_vision as pv
from petl_vision.datasets import VTAB_TASKS
from petl_vision.setup_env import register_all_modules
from tests.datasets.test_classification_datasets import write_cifar100, write_fgvc, write_vtab_task

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / 'configs' / '_base_'
# ViT with ViT-B/16's token layout at 224 px (patch 16, class token) but 2 blocks of width 64
TINY_BACKBONE = dict(model='vit_base_patch16_224', pretrained=None, embed_dim=64, depth=2, num_heads=2,
                     drop_path_rate=0.0)
FAST_LOADER = dict(batch_size=4, num_workers=0, persistent_workers=False)

register_all_modules()


def write_vtab(root: Path, task: str) -> None:
    """NOAH's layout with every list file; labels spread over the task's classes."""
    num_classes = VTAB_TASKS[task][1]
    train, val = [(i * 7) % num_classes for i in range(6)], [(i * 7) % num_classes for i in range(3)]
    write_vtab_task(root, task, {'train800.txt': train, 'val200.txt': val, 'train800val200.txt': train + val,
                                 'test.txt': val})


FGVC = {'cub': ('images', 200), 'nabirds': ('images', 555), 'flowers': ('', 102), 'dogs': ('Images', 120),
        'cars': ('', 196)}


def dataset_fixture(name: str, tmp_path: Path) -> tuple[str, dict]:
    """Write fixture data for a configs/_base_/datasets file; return its data_root and extra dataset keys."""
    root = tmp_path / 'data'
    if name == 'cifar100':
        write_cifar100(root, n_train=12, n_test=4)
        return str(root), {'val_size': 4}
    if name == 'vtab1k':
        write_vtab(root, 'dtd')
        return str(root), {'task': 'dtd'}
    root.mkdir(parents=True)
    write_fgvc(root, FGVC[name][0])
    return str(root), {}


def tiny_config(base: list[str], tmp_path: Path, data_root: str, extra: dict, num_classes: int,
                plan='lora') -> Config:
    """A config inheriting ``base`` (paths), with the tiny backbone and fixture data; one epoch, val every epoch."""
    text = f'_base_ = {[str(p) for p in base]}\n'
    path = tmp_path / 'tiny_config.py'
    path.write_text(text)
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict({
        'model.backbone': {**TINY_BACKBONE, 'num_classes': num_classes}, 'model.plan': plan,
        'work_dir': str(tmp_path / 'work'), 'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
        'param_scheduler': [], 'default_hooks.logger.interval': 1, 'env_cfg.dist_cfg.backend': 'gloo',
        'auto_scale_lr': None,
    })
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, save_best=None)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(FAST_LOADER)
        cfg[loader].dataset.update(data_root=data_root, **extra)
    return cfg


def _best_and_test(cfg: Config) -> tuple[Runner, dict]:
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    return runner, metrics


@pytest.mark.parametrize('name', ['cifar100', 'cub', 'nabirds', 'flowers', 'dogs', 'cars', 'vtab1k'])
def test_dataset_config_trains_validates_and_tests_end_to_end(name, tmp_path):
    data_root, extra = dataset_fixture(name, tmp_path)
    num_classes = {'cifar100': 100, 'vtab1k': VTAB_TASKS['dtd'][1]}.get(name) or FGVC[name][1]
    cfg = tiny_config([BASE / 'models' / 'vit-b16-in21k.py', BASE / 'datasets' / f'{name}.py',
                       BASE / 'schedules' / 'adamw_cosine_100e.py',
                       BASE / 'default_runtime.py'], tmp_path, data_root, extra, num_classes)
    runner, metrics = _best_and_test(cfg)
    assert cfg.val_dataloader.dataset.split == 'val' and cfg.test_dataloader.dataset.split == 'test'
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0 and 'accuracy/top5' in metrics
    work = Path(cfg.work_dir)
    best = json.loads((work / 'tuners_best.json').read_text())
    assert 'accuracy/top1' in best  # selected on val (the only evaluation during training)
    state = pv.tuners.read_tuner_file(work / 'tuners_best.safetensors')
    assert state  # the tuner-only file holds trainable tensors and the plan
    counts = runner.model.parameter_counts()
    assert counts['trainable'] == 2 * 2 * (8 * 64 + 64 * 8)  # LoRA r8 on q and v of 2 blocks: A (8x64) + B (64x8)


def test_quickstart_digits_config_trains_and_the_best_tuners_reload(tmp_path):
    """The shipped demo backbone on the rotated digits, LoRA, a few iterations; tools/test.py-style reload."""
    cfg = Config.fromfile(str(ROOT / 'configs' / 'quickstart' / 'lora.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 1
    cfg.param_scheduler = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    val = json.loads((tmp_path / 'work' / 'tuners_best.json').read_text())['accuracy/top1']
    fresh_cfg = Config.fromfile(str(ROOT / 'configs' / 'quickstart' / 'lora.py'))
    fresh_cfg.work_dir = str(tmp_path / 'fresh')
    fresh = Runner.from_cfg(fresh_cfg)
    pv.load_tuners(fresh.model.backbone, tmp_path / 'work' / 'tuners_best.safetensors')
    metrics = fresh.val()
    assert metrics['accuracy/top1'] == pytest.approx(val)
    # 20 shots x 10 classes at batch 32: 7 iterations of the real pipeline; the pretrained digits features
    # are already far above chance (10 %) after one epoch of LoRA + head
    assert val > 20.0


METHOD_CONFIGS = sorted(ROOT.glob('configs/*/*_vit-b16-in21k_cifar100.py'))


def test_every_preset_has_a_cifar100_config():
    methods = {p.parent.name for p in METHOD_CONFIGS}
    assert methods >= set(pv.list_presets()), f'missing method configs: {set(pv.list_presets()) - methods}'


@pytest.mark.parametrize('config', METHOD_CONFIGS, ids=lambda p: p.parent.name)
def test_method_config_builds_and_runs_one_iteration_on_a_tiny_backbone(config, tmp_path):
    data_root, extra = dataset_fixture('cifar100', tmp_path)
    cfg = Config.fromfile(str(config))
    plan = cfg.model.plan
    cfg = tiny_config([config], tmp_path, data_root, extra, 100, plan=plan)
    cfg.train_dataloader.dataset.indices = 4  # one batch of 4: one iteration
    runner = Runner.from_cfg(cfg)
    before = {n: p.detach().clone() for n, p in runner.model.named_parameters() if p.requires_grad}
    runner.train()
    assert runner.iter == 1
    after = dict(runner.model.named_parameters())
    changed = [n for n, p in before.items() if not torch.equal(p, after[n].detach())]
    assert changed, 'one optimizer step changed no trainable parameter'
    frozen = [n for n, p in after.items() if not p.requires_grad]
    assert (plan == 'full') == (not frozen)  # everything trains only under full fine-tuning


def test_runner_keeps_the_pretrained_backbone_weights(tmp_path):
    """mmengine's Runner calls model.init_weights(); it must not redraw the pretrained timm weights."""
    from petl_vision.demo import DEMO_CHECKPOINT

    cfg = Config.fromfile(str(ROOT / 'configs' / 'quickstart' / 'lora.py'))
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner._init_model_weights()
    state = torch.load(DEMO_CHECKPOINT, weights_only=True)
    tuned = {k.replace('.base.', '.'): v for k, v in runner.model.backbone.state_dict().items()}
    assert all(torch.equal(tuned[k], v) for k, v in state.items())
