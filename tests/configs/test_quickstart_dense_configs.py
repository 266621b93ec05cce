"""Every configs/quickstart_dense config builds on the shipped digits Swin, trains one step on DigitsDenseMT, and
selects its best epoch by a metric its evaluator reports; the suite's delta_m needs exactly one single-task run
per task."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from petl_vision import setup_env
from petl_vision.evaluation.dense import DELTA_M_METRICS, LOWER_IS_BETTER
from petl_vision.registry import DATASETS, MODELS

CONFIGS = sorted((Path(__file__).resolve().parents[2] / 'configs' / 'quickstart_dense').glob('*.py'))


def test_one_single_task_baseline_per_task():
    singles = [Config.fromfile(str(p)) for p in CONFIGS if p.stem.startswith('single-task')]
    assert all(c.suite.single_task for c in singles)
    assert sorted(t for c in singles for t in c.model.tasks) == sorted(('semseg', 'sal', 'normals', 'depth'))
    for c in singles:  # each selects by the delta_m metric of its task, in the right direction
        (hook,) = c.custom_hooks
        metric = DELTA_M_METRICS[c.model.tasks[0]]
        assert hook.save_best == f'dense/{metric}' and hook.rule == ('less' if metric in LOWER_IS_BETTER else 'greater')


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_one_step(path):
    setup_env.register_all_modules()
    cfg = Config.fromfile(str(path))
    with DefaultScope.overwrite_default_scope('petl_vision'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        data = DATASETS.build(cfg.train_dataloader.dataset)
    assert tuple(data.tasks) == tuple(model.tasks) == tuple(cfg.val_evaluator.tasks)
    batch = default_collate([data[i] for i in range(4)])
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    log = model.train_step(batch, optim)
    assert torch.isfinite(log['loss'])
    moved = {n.split('.')[0] for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])}
    assert moved == ({'decoders'} if path.stem == 'decoders-only' else {'decoders', 'backbone'})
