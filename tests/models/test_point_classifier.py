"""PointClassifier with the mmengine Runner on tiny fixtures in the real ScanObjectNN / ModelNet40 formats; the
trainable counts of every point config (DAPT's official 1,087,771); Point-MAE checkpoints through the model."""
import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

import petl_vision as pv
from petl_vision.models import PointClassifier
from petl_vision.registry import METRICS, MODELS
from petl_vision.setup_env import register_all_modules
from petl_vision.tuners.dapt import DAPT_TRAINABLE, dapt_plan
from petl_vision.tuners.point_prompts import idpt_plan
from tests.backbones.test_point_transformer import _point_mae_pretrain_state
from tests.datasets.test_point_clouds import MODELNET_CLASSES, _dat, _h5

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(str(p.relative_to(ROOT)) for d in ('dapt', 'point_baselines')
                 for p in (ROOT / 'configs' / d).glob('*.py'))
# trainable parameters with the head, on Point-MAE's ViT-S (head: 15 ScanObjectNN / 40 ModelNet40 classes)
EXPECTED = {
    'dapt_point-mae-vit-s_300e_scanobjectnn-objbg': 1_087_771,  # the official code's count
    'dapt_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 1_087_771,
    'dapt-no-ssf_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 984_859,
    'dapt_point-mae-vit-s_300e_scanobjectnn-objonly': 989_467,  # head on [cls, prompts]: 2C input
    'dapt_point-mae-vit-s_300e_modelnet40': 1_069_716,  # rank 72, 40 classes, head on [cls, patches]
    'idpt_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 1_696_783,  # IDPT reports 1.7M
    'full_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 22_093_327,  # DAPT's table: 22.1M
    'linear_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 267_535,
    'vpt-deep_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 46_080 + 768 + 267_535,
    'lora_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 147_456 + 768 + 267_535,
    'adapter_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 78_432 + 768 + 267_535,
    'point-peft-adapters_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs': 304_512 + 768 + 267_535,
}
TINY = dict(trans_dim=16, depth=12, num_heads=2, group_size=8, num_group=8, encoder_dims=16, pretrained=None)


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    """Four clouds per split in each real format, as many points as the configs' pipelines draw."""
    rng = np.random.default_rng(0)
    scan = tmp_path_factory.mktemp('ScanObjectNN')
    for folder, stem in [('main_split', 'objectdataset'), ('main_split_nobg', 'objectdataset'),
                         ('main_split', 'objectdataset_augmentedrot_scale75')]:
        for prefix in ('training', 'test'):
            _h5(scan / folder / f'{prefix}_{stem}.h5', rng.normal(size=(4, 2048, 3)).astype(np.float32),
                np.array([0, 3, 0, 3], dtype=np.uint8))
    modelnet = tmp_path_factory.mktemp('modelnet40_normal_resampled')
    (modelnet / 'modelnet40_shape_names.txt').write_text('\n'.join(MODELNET_CLASSES) + '\n')
    for split in ('train', 'test'):
        clouds = [rng.normal(size=(1200, 6)).astype(np.float32) for _ in range(4)]
        _dat(modelnet / f'modelnet40_{split}_8192pts_fps.dat', clouds, [np.array([c], np.int32) for c in (1, 5, 1, 5)],
             pickle.HIGHEST_PROTOCOL)
    return {'ScanObjectNN': str(scan), 'ModelNet40': str(modelnet)}


def tiny_config(path: str, roots: dict, work_dir: Path) -> Config:
    """The config with a tiny 12-block backbone, the fixture data, one epoch and no worker processes."""
    cfg = Config.fromfile(ROOT / path)
    cfg.model.backbone.update(TINY)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = roots[loader.dataset.type]
    return cfg


def _build_meta(path: str):
    cfg = Config.fromfile(ROOT / path)
    cfg.model.backbone.pretrained = None
    with DefaultScope.overwrite_default_scope('petl_vision'), torch.device('meta'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_trainable_counts(path):
    assert set(EXPECTED) == {Path(p).stem for p in CONFIGS}
    counts = _build_meta(path).parameter_counts()
    assert counts['trainable_with_head'] == EXPECTED[Path(path).stem]
    assert counts['trainable_with_head'] == counts['trainable'] + counts['head']


def test_config_plans_match_the_python_helpers():
    dapt = Config.fromfile(ROOT / 'configs/dapt/dapt_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs.py').model
    assert dapt.plan == dapt_plan(rank=64, dropout=0.2) and tuple(dapt.trainable) == DAPT_TRAINABLE
    no_ssf = Config.fromfile(ROOT / 'configs/dapt/dapt-no-ssf_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs.py').model
    assert no_ssf.plan == dapt_plan(rank=64, dropout=0.2, ssf=False)
    idpt = Config.fromfile(ROOT / 'configs/point_baselines/idpt_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs.py').model
    assert [{k: v for k, v in e.items() if k != 'num_edge_convs'} for e in idpt.plan] == idpt_plan(depth=12)


def test_dapt_counts_by_part():
    """1,087,771 = 12 x (adapter 50,753 + SSF 9,216 incl. the prompt's 768) + stem/final SSF 1,536 + cls 768 + head."""
    model = _build_meta('configs/dapt/dapt_point-mae-vit-s_300e_scanobjectnn-objbg.py').backbone
    by_type = {}
    for row in pv.describe_tuners(model):
        by_type[row['type']] = by_type.get(row['type'], 0) + row['params']
    assert by_type == {'DynamicAdapter': 12 * 50_753, 'InternalPrompt': 12 * 768, 'SSF': 12 * 8_448 + 1_536}
    assert sum(p.numel() for p in model.head.parameters()) == 365_839


@pytest.mark.parametrize('path', CONFIGS)
def test_every_config_builds_and_runs_one_iteration(path, data_roots, tmp_path):
    """Model, optimizer (trainable-only, the recipe's decay rules), data pipelines and metric of each config, with a
    tiny backbone: one training step moves only trainable weights, one validation batch is scored."""
    cfg = tiny_config(path, data_roots, tmp_path)
    with DefaultScope.overwrite_default_scope('petl_vision'):
        model = MODELS.build(cfg.model)
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        train_batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
        val_batch = next(iter(Runner.build_dataloader(cfg.val_dataloader)))
        metric = METRICS.build(cfg.val_evaluator)
    num_points = 1024 if 'ModelNet40' in str(cfg.train_dataloader.dataset.type) else 2048
    assert train_batch['inputs'].shape == (4, num_points, 3) and val_batch['inputs'].shape == (4, num_points, 3)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    decay = {id(p): g['weight_decay'] for g in optim_wrapper.optimizer.param_groups for p in g['params']}
    assert len(decay) == len(trainable)  # frozen weights never reach the optimizer
    named = dict(model.named_parameters())
    for n in trainable:  # the official recipe: no decay on 1-D tensors and tokens, 0.05 on the rest
        assert decay[id(named[n])] == (0.0 if named[n].ndim == 1 or n.endswith('cls_token') else 0.05), n
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    log_vars = model.train_step(train_batch, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and moved <= trainable
    model.eval()
    metric.process(val_batch, model.val_step(val_batch))
    assert metric.compute_metrics(metric.results)['top1'] in (0.0, 25.0, 50.0, 75.0, 100.0)


def test_dapt_trains_end_to_end_with_the_runner(data_roots, tmp_path):
    """The OBJ_BG DAPT config under mmengine's Runner on four clouds of two classes: the training loss falls, the
    test split is scored, the tuner-only checkpoint holds exactly the trainable tensors."""
    register_all_modules()
    cfg = tiny_config('configs/dapt/dapt_point-mae-vit-s_300e_scanobjectnn-objbg.py', data_roots, tmp_path)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=6)
    cfg.default_hooks.checkpoint.interval = 6
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = 1e-2
    cfg.model.backbone.update(drop_path_rate=0.0, head_dropout=0.0)
    cfg.model.plan[0]['dropout'] = 0.0
    runner = Runner.from_cfg(cfg)
    losses = []
    runner.register_hook(_LossRecorder(losses))
    runner.train()
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert runner.message_hub.get_scalar('val/accuracy/top1').current() in (0.0, 25.0, 50.0, 75.0, 100.0)
    meta, tensors = pv.tuners.read_tuner_file(tmp_path / 'tuners_best.safetensors')
    backbone = runner.model.backbone
    assert set(tensors) == set(pv.tuners.adapter_state(backbone, 'default')) and meta['plan'] == backbone.petl_plan
    trained = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    assert trained == sum(tensors[k].numel() for k in tensors if 'running_' not in k and 'num_batches' not in k)


class _LossRecorder(Hook):
    priority = 'LOWEST'

    def __init__(self, losses: list):
        self.losses = losses

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))


def test_predict_outputs_and_preprocessor_cast():
    model = PointClassifier(backbone=dict(TINY, depth=2, num_classes=3), plan='lora').eval()
    batch = {'inputs': torch.randn(2, 64, 3, dtype=torch.float64), 'data_samples': torch.tensor([2, 0])}
    data = model.data_preprocessor(copy.deepcopy(batch))
    assert data['inputs'].dtype == torch.float32 and torch.equal(data['inputs'], batch['inputs'].float())
    out = model.test_step(batch)
    logits = model(data['inputs'])
    assert [o['gt_label'] for o in out] == [2, 0]
    for o, row in zip(out, logits):
        torch.testing.assert_close(o['pred_score'], row.softmax(-1))
        assert o['pred_label'] == int(row.argmax())
    loss = model(data['inputs'], data['data_samples'], mode='loss')['loss']
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, data['data_samples']))
    with pytest.raises(ValueError, match='mode must be'):
        model(data['inputs'], mode='logits')


def test_point_mae_checkpoint_through_the_model(tmp_path, monkeypatch):
    source = PointClassifier(backbone=dict(TINY, depth=2, num_classes=4), plan='linear').backbone
    source.train()(torch.randn(2, 64, 3))  # move BatchNorm statistics away from their init
    state = _point_mae_pretrain_state(source)
    torch.save({'base_model': state, 'epoch': 300, 'metrics': {'acc': np.float64(0)}}, tmp_path / 'pretrain.pth')
    monkeypatch.setenv('PETL_VISION_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('PETL_VISION_OFFLINE', '1')
    (tmp_path / 'cache').mkdir()
    (tmp_path / 'cache' / 'point_mae.shapenet.pth').write_bytes((tmp_path / 'pretrain.pth').read_bytes())
    own = source.state_dict()
    for pretrained in (str(tmp_path / 'pretrain.pth'), 'zoo://point_mae.shapenet'):
        backbone = dict(TINY, depth=2, num_classes=4, pretrained=pretrained, pos_every_block=False, prompt_pool='mean')
        model = PointClassifier(backbone=backbone, plan=dapt_plan(rank=4, ssf=False), trainable=DAPT_TRAINABLE)
        loaded = {k.replace('.base.', '.'): v for k, v in model.backbone.state_dict().items() if '.tuners.' not in k}
        for k, v in own.items():
            if not k.startswith(('head.', 'cls_')):
                assert torch.equal(loaded[k], v), k
        assert not torch.equal(loaded['encoder.first_conv.1.running_mean'], torch.zeros(128))
    with pytest.raises(FileNotFoundError, match='Point-MAE / Point-BERT pretrained weights'):
        PointClassifier(backbone=dict(TINY, depth=2, pretrained=str(tmp_path / 'missing.pth')))
