"""Every config under configs/polyhistor loads, builds its model on a tiny Swin and runs one training iteration."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from petl_vision import setup_env
from petl_vision.registry import MODELS

CONFIGS = sorted((Path(__file__).resolve().parents[2] / 'configs' / 'polyhistor').glob('*.py'))
TINY_SWIN = dict(model='swin_tiny_patch4_window7_224', pretrained=None, img_size=32, patch_size=2, window_size=2,
                 embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
METHODS = ('decoders-only', 'mtl-full', 'bitfit', 'lora', 'vpt-shallow', 'vpt-deep', 'shared-adapter',
           'per-task-adapters', 'hyperformer', 'polyhistor', 'polyhistor-lite')


def test_every_method_backbone_and_dataset_has_a_config():
    names = {p.stem for p in CONFIGS}
    for data, tasks in (('pascal-context', ('semseg', 'human-parts', 'sal', 'normals')),
                        ('nyud', ('semseg', 'depth', 'normals'))):
        for bb in ('swin-t', 'swin-b'):
            expected = {f'{m}_{bb}_300e_{data}' for m in METHODS}
            expected |= {f'single-task-full-{t}_{bb}_300e_{data}' for t in tasks}
            assert expected <= names, sorted(expected - names)
    assert len(names) == 2 * (2 * len(METHODS) + 4 + 3)


def _gt(tasks, b=2, size=32):
    g = torch.Generator().manual_seed(0)
    maps = {'semseg': torch.randint(0, 21, (b, size, size), generator=g),
            'human_parts': torch.randint(0, 7, (b, size, size), generator=g),
            'sal': torch.randint(0, 2, (b, size, size), generator=g),
            'normals': torch.nn.functional.normalize(torch.randn(b, 3, size, size, generator=g), dim=1),
            'depth': torch.rand(b, 1, size, size, generator=g) * 5}
    return {t: maps[t] for t in tasks}


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_and_trains_one_iteration(path):
    setup_env.register_all_modules()
    cfg = Config.fromfile(str(path))
    model_cfg = cfg.model
    tasks = tuple(model_cfg.tasks)
    # the data, metric and model agree on the tasks; the schedule is the papers' 300 epochs
    assert tuple(cfg.train_dataloader.dataset.tasks) == tuple(cfg.val_evaluator.tasks) == tasks
    assert set(model_cfg.loss_weights) == set(tasks)
    assert cfg.train_cfg.max_epochs == 300
    assert ('swin_base' if '_swin-b_' in path.name else 'swin_tiny') in model_cfg.backbone.model
    twin = path.with_name(path.name.replace('_swin-b_', '_swin-t_'))
    if twin != path:  # a Swin-B config differs from its Swin-T twin in the backbone and width-sized tuner dims only
        other = Config.fromfile(str(twin)).model
        assert {k: v for k, v in model_cfg.items() if k not in ('backbone', 'plan')} == \
            {k: v for k, v in other.items() if k not in ('backbone', 'plan')}
        plan, twin_plan = model_cfg.get('plan'), other.get('plan')
        if isinstance(plan, str) or plan is None:
            assert plan == twin_plan
        else:
            assert [(e['type'], e.get('targets')) for e in plan] == [(e['type'], e.get('targets')) for e in twin_plan]
        return
    model_cfg.backbone = dict(TINY_SWIN)
    model_cfg.decoder.update(channels=(4, 4, 8, 8), expand=1)
    with DefaultScope.overwrite_default_scope('petl_vision'):
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    data = {'inputs': torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), 'data_samples': _gt(tasks)}
    log = model.train_step(data, optim)
    assert set(log) == {f'loss_{t}' for t in tasks} | {'loss'} and torch.isfinite(log['loss'])
    moved = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert any(n.startswith('decoders.') for n in moved)
    assert any(n.startswith('backbone.') for n in moved) == ('decoders-only' not in path.name)


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_model_selection_reads_a_metric_that_validation_reports(path):
    from petl_vision.evaluation.dense import LOWER_IS_BETTER, MultiTaskDenseMetric

    cfg = Config.fromfile(str(path))
    metric = MultiTaskDenseMetric(tasks=cfg.val_evaluator.tasks, num_classes=cfg.val_evaluator.num_classes)
    gt = {t: v[0] for t, v in _gt(metric.tasks, b=1).items()}
    pred = {t: (torch.rand(21, 32, 32) if t in ('semseg', 'human_parts') else v.float()) for t, v in gt.items()}
    metric.process({}, [{'pred': pred, 'gt': gt}])
    reported = set(metric.evaluate(1))
    hooks = [cfg.default_hooks.checkpoint, *[h for h in cfg.custom_hooks if h.type == 'TunerCheckpointHook']]
    assert len(hooks) == 2
    for hook in hooks:
        assert hook.save_best in reported, (hook.save_best, sorted(reported))
        assert hook.rule == ('less' if hook.save_best.removeprefix('dense/') in LOWER_IS_BETTER else 'greater')
