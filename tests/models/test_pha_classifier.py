"""PHAClassifier: PHA's loss (CE + 0.1 L_ins-ins + 0.1 L_pro-ins), mixed-task batches, retrieval by the nearest
prototype (pre-pass or an early block), and the digits config training one epoch through mmengine."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from petl_vision.models import PHAClassifier
from petl_vision.setup_env import register_all_modules
from petl_vision.tuners import BASE, tuner_context
from petl_vision.tuners.pha_losses import instance_instance_loss, prototype_instance_loss
from tests.conftest import perturb

register_all_modules()
ROOT = Path(__file__).resolve().parents[2]
TASKS = {'digit': 10, 'parity': 2}


def model(**kw) -> PHAClassifier:
    torch.manual_seed(0)
    kw.setdefault('plan', [dict(type='PHA', rank=8)])
    m = PHAClassifier(backbone=dict(model='vit_digits_demo', pretrained=True), tasks=TASKS, **kw).eval()
    perturb(m, seed=4, scale=0.05)
    return m


def batch():
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return x, torch.tensor([7, 1, 3, 0]), ['digit', 'parity', 'digit', 'parity']


def test_the_loss_adds_the_weighted_contrastive_terms_to_the_cross_entropy():
    m = model()
    x, labels, tasks = batch()
    losses = m(x, labels, mode='loss', task=tasks)
    y, protos = torch.tensor([0, 1, 0, 1]), m.source.prototypes.weight
    with torch.no_grad(), tuner_context(adapter=[BASE] * 4):  # the pre-pass: the frozen backbone, adapters off
        e = m.embed(m.backbone.forward_features(x))
    torch.testing.assert_close(losses['loss_ins_ins'], 0.1 * instance_instance_loss(e, y), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses['loss_pro_ins'], 0.1 * prototype_instance_loss(e, y, protos), rtol=1e-4,
                               atol=1e-6)
    ce = (losses['ce_digit'] + losses['ce_parity']) / 2  # two samples of each task
    torch.testing.assert_close(losses['loss'], ce, rtol=1e-5, atol=1e-6)
    counts = m.parameter_counts()
    assert (counts['hypernetwork'], counts['prototypes'], counts['retriever']) == (131_880, 128, 20_672)


def test_each_sample_uses_its_tasks_prototype_in_a_mixed_batch():
    m = model()
    x, _, tasks = batch()
    mixed = m(x, mode='tensor', task=tasks)
    digit_alone = m(x[[0, 2]], mode='tensor', task='digit')['digit']
    torch.testing.assert_close(mixed['digit'], digit_alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('features', ['prepass', 1])
def test_retrieved_mode_uses_the_nearest_prototype(features):
    blocks = range(6) if features == 'prepass' else range(2, 6)  # same pass: only blocks after the retriever's
    m = model(task_source='retrieved', retriever_features=features,
              plan=[dict(type='PHA', rank=8, targets=[f'blocks.{i}.mlp' for i in blocks])])
    x, labels, tasks = batch()
    with torch.no_grad():  # make sample 0 a 'parity' instance for the retriever: its prototype = its embedding
        e0 = m.run(x[:1], ['digit'], 'given')[1][0]
        m.source.prototypes.weight[1] = e0
        m.source.prototypes.weight[0] = -e0
    retrieved = [p['retrieved_task'] for p in m(x, labels, mode='predict', task=tasks)]
    assert retrieved[0] == 'parity'
    routed = m(x, mode='tensor', task=tasks)  # heads by the gold task, adapters by the retrieved prototype
    for t, idx in {'digit': [0, 2], 'parity': [1, 3]}.items():
        for j, i in enumerate(idx):
            with tuner_context(task=retrieved[i]):
                expected = m.heads[t](m.backbone(x[i:i + 1]))
            torch.testing.assert_close(routed[t][j:j + 1], expected, rtol=1e-5, atol=1e-5)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match='task_source'):
        model(task_source='nearest')
    with pytest.raises(ValueError, match="'prepass' or a block index"):
        model(retriever_features='early')
    with pytest.raises(ValueError, match='not a block index'):
        model(retriever_features=40)


def test_the_digits_pha_config_trains_one_epoch(tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'pha' / 'pha_digits_multitask.py'))
    cfg.merge_from_dict({'work_dir': str(tmp_path), 'train_cfg.max_epochs': 1, 'default_hooks.logger.interval': 5})
    runner = Runner.from_cfg(cfg)
    before = {n: p.detach().clone() for n, p in runner.model.named_parameters() if p.requires_grad}
    runner.train()
    moved = [n for n, p in runner.model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert any('retriever' in n for n in moved) and any('prototypes' in n for n in moved)
    assert (tmp_path / 'tuners_best.safetensors').exists()
    metrics = runner.test()
    tasks = list(cfg.model.tasks)
    assert set(metrics) == {f'{t}/top1' for t in tasks} | {'mean/top1'} | {f'retrieval/{t}' for t in tasks} | \
        {'retrieval/all'}
    # the four tasks' test sets are the same 200 images, so each image retrieves one task and is right for exactly
    # one of its four copies: 25% overall, whatever the prototypes learned (the task is not in the image)
    assert metrics['retrieval/all'] == pytest.approx(25.0)
    assert metrics['parity/top1'] > 50.0  # above chance after one epoch
