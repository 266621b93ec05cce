"""MultiTaskClassifier: one frozen backbone, an adapter and a head per task, mixed-task batches; trained end to end
through mmengine on the digits multi-task demo and on fixture data in the VTAB-1k and FGVC on-disk formats."""
from pathlib import Path

import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.evaluation import MultiTaskAccuracy
from petl_vision.models import MultiTaskClassifier
from petl_vision.setup_env import register_all_modules
from tests.training.test_train_end_to_end import FGVC, FAST_LOADER, TINY_BACKBONE, write_vtab
from tests.conftest import perturb
from tests.datasets.test_classification_datasets import write_fgvc

register_all_modules()
ROOT = Path(__file__).resolve().parents[2]
TASKS = {'digit': 10, 'parity': 2}


def model(**kw) -> MultiTaskClassifier:
    torch.manual_seed(0)
    return MultiTaskClassifier(backbone=dict(model='vit_digits_demo', pretrained=True), tasks=TASKS, **kw).eval()


def batch(n: int = 4):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, 255, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    tasks = ['digit', 'parity', 'digit', 'parity'][:n]
    labels = torch.tensor([7, 1, 3, 0][:n])
    return inputs, labels, tasks


def test_each_sample_goes_through_its_tasks_adapter_and_head():
    m = model()
    perturb(m, seed=4, scale=0.05)
    inputs, labels, tasks = batch()
    x = m.data_preprocessor({'inputs': inputs})['inputs']
    logits = m(x, mode='tensor', task=tasks)
    assert {t: v.shape for t, v in logits.items()} == {'digit': (2, 10), 'parity': (2, 2)}
    for i, t in enumerate(tasks):  # alone, with only its task's adapter active
        pv.set_adapter(m.backbone, t)
        alone = m.heads[t](m.backbone(x[i:i + 1]))
        row = [j for j, s in enumerate(tasks) if s == t].index(i)
        torch.testing.assert_close(logits[t][row:row + 1], alone, rtol=1e-5, atol=1e-5)


def test_the_loss_is_the_batch_mean_of_each_samples_cross_entropy():
    m = model()
    perturb(m, seed=4, scale=0.05)
    inputs, labels, tasks = batch()
    x = m.data_preprocessor({'inputs': inputs})['inputs']
    losses = m(x, labels, mode='loss', task=tasks)
    logits = m(x, mode='tensor', task=tasks)
    per_sample = torch.cat([F.cross_entropy(logits['digit'], labels[[0, 2]], reduction='none'),
                            F.cross_entropy(logits['parity'], labels[[1, 3]], reduction='none')])
    torch.testing.assert_close(losses['loss'], per_sample.mean())
    with pytest.raises(ValueError, match='labels of this batch span 0..7 but the head has num_classes=2'):
        m(x, torch.tensor([7, 7, 0, 0]), mode='loss', task=['parity'] * 4)


def test_a_training_step_moves_only_the_adapters_and_heads_of_the_batchs_tasks():
    m = model()
    m.train()
    inputs, labels, _ = batch()
    x = m.data_preprocessor({'inputs': inputs})['inputs']
    m(x, labels % 2, mode='loss', task=['parity'] * 4)['loss'].backward()
    moved = {n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert moved and all('.parity.' in n or n.startswith('heads.parity') for n in moved)
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen and all('.tuners.' not in n and not n.startswith('heads') for n in frozen)


def test_per_task_counts_and_variants():
    per_task = model().parameter_counts()
    lora = per_task['per_task']['digit']['adapter']
    ref = pv.apply_tuners(timm.create_model('vit_digits_demo', num_classes=0), 'lora')
    assert lora == pv.count_parameters(ref)['trainable'] == 18_432  # the quick start's LoRA count
    assert per_task['per_task']['digit']['head'] == 96 * 10 + 10
    assert per_task['per_task']['digit']['percent_of_backbone'] == pytest.approx(100 * 18_432 / per_task['backbone'])
    assert model(plan='linear').parameter_counts()['per_task']['parity']['adapter'] == 0
    assert model(adapters='shared').parameter_counts()['per_task']['parity']['adapter'] == 18_432
    full = model(plan='full', adapters='shared').parameter_counts()
    assert full['per_task']['digit']['percent_of_backbone'] == 100.0
    vlm = model(plan='adapter', plans={'parity': [{'type': 'Adapter', 'targets': 'blocks.*.mlp', 'dim': 2}]})
    counts = vlm.parameter_counts()['per_task']
    assert counts['digit']['adapter'] > counts['parity']['adapter'] > 0  # a bottleneck per task, as VLM
    with pytest.raises(ValueError, match=r"plans name tasks \['loops'\]"):
        model(plans={'loops': 'lora'})


def test_multitask_accuracy_reports_each_task_and_the_mean():
    metric = MultiTaskAccuracy()
    metric.process(None, [{'task': 'a', 'pred_score': torch.tensor([0.9, 0.1]), 'gt_label': 0},
                          {'task': 'a', 'pred_score': torch.tensor([0.9, 0.1]), 'gt_label': 1},
                          {'task': 'b', 'pred_score': torch.tensor([0.1, 0.2, 0.7]), 'gt_label': 2}])
    assert metric.compute_metrics(metric.results) == {'a/top1': 50.0, 'b/top1': 100.0, 'mean/top1': 75.0}


def test_per_task_tuner_files_restore_each_task(tmp_path):
    m = model()
    perturb(m, seed=4, scale=0.05)
    inputs, _, tasks = batch()
    x = m.data_preprocessor({'inputs': inputs})['inputs']
    expected = m(x, mode='tensor', task=tasks)
    fresh = model()
    for file, adapter, owner in m.tuner_files('tuners_best.safetensors'):
        pv.save_tuners(m.backbone, tmp_path / file, owner=owner, adapter=adapter)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['tuners_best_digit.safetensors',
                                                           'tuners_best_parity.safetensors']
    for file, adapter, owner in fresh.tuner_files('tuners_best.safetensors'):
        pv.load_tuners(fresh.backbone, tmp_path / file, owner=owner, adapter=adapter, replace=True)
    got = fresh(x, mode='tensor', task=tasks)
    for t in expected:
        torch.testing.assert_close(got[t], expected[t], rtol=0, atol=0)


def _train(cfg: Config) -> Runner:
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_the_digits_multitask_quick_start_config_trains_and_writes_a_file_per_task(tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'quickstart_multitask' / 'lora.py'))
    cfg.merge_from_dict({'work_dir': str(tmp_path), 'train_cfg.max_epochs': 1, 'default_hooks.logger.interval': 5})
    runner = _train(cfg)
    names = sorted(p.name for p in tmp_path.glob('tuners_best_*.safetensors'))
    assert names == [f'tuners_best_{t}.safetensors' for t in sorted(cfg.model.tasks)]
    metrics = runner.test()
    assert set(metrics) == {f'{t}/top1' for t in cfg.model.tasks} | {'mean/top1'}
    assert metrics['parity/top1'] > 50.0  # above chance after one epoch


def test_trains_on_vtab_and_fgvc_format_fixtures_as_one_multitask_run(tmp_path):
    vtab_root, fgvc_root = tmp_path / 'vtab', tmp_path / 'fgvc'
    write_vtab(vtab_root, 'dtd')
    fgvc_root.mkdir()
    write_fgvc(fgvc_root, FGVC['flowers'][0])
    pipeline = [dict(type='LoadImage'), dict(type='Resize', size=(32, 32)), dict(type='PackInputs')]

    def tasks(split: str) -> dict:
        return dict(type='MultiTaskDataset', datasets=dict(
            dtd=dict(type='VTAB1k', data_root=str(vtab_root), task='dtd', split=split, pipeline=pipeline),
            flowers=dict(type='OxfordFlowers', data_root=str(fgvc_root), split=split, pipeline=pipeline)))

    cfg = Config.fromfile(str(ROOT / 'configs' / '_base_' / 'quickstart_multitask.py'))
    cfg.merge_from_dict({
        'model': dict(type='MultiTaskClassifier', backbone={**TINY_BACKBONE, 'img_size': 32, 'patch_size': 8},
                      tasks=dict(dtd=47, flowers=102), plan='lora'),
        'work_dir': str(tmp_path / 'work'), 'train_cfg.max_epochs': 1, 'default_hooks.logger.interval': 1})
    cfg.train_dataloader = dict(**FAST_LOADER, collate_fn=dict(type='default_collate'),
                                sampler=dict(type='TaskBalancedSampler', mode='temperature', temperature=2.0),
                                dataset=tasks('train'))
    cfg.val_dataloader = dict(**FAST_LOADER, collate_fn=dict(type='default_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=False), dataset=tasks('val'))
    cfg.test_dataloader = cfg.val_dataloader
    runner = _train(cfg)
    assert set(runner.val()) == {'dtd/top1', 'flowers/top1', 'mean/top1'}
    assert (tmp_path / 'work' / 'tuners_best_flowers.safetensors').exists()
