"""MultiTaskDenseModel: stage maps, decoders, losses and predictions in the formats of the dense datasets and
metric, one backbone pass per task only where a tuner reads the task, and an mmengine run on fixture data."""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import petl_vision as pv
from petl_vision import setup_env
from petl_vision.evaluation.dense import MultiTaskDenseMetric
from petl_vision.models.dense import MultiTaskDenseModel
from tests.datasets.test_dense_multitask import nyud_root, pascal_root  # noqa: F401  (fixtures in the real layouts)

PASCAL = ('semseg', 'human_parts', 'sal', 'normals')
TINY_SWIN = dict(model='swin_tiny_patch4_window7_224', pretrained=None, img_size=32, patch_size=2, window_size=2,
                 embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
POLY = [dict(type='Polyhistor', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'])]


def tiny_model(plan='linear', tasks=PASCAL, **kw) -> MultiTaskDenseModel:
    torch.manual_seed(0)
    return MultiTaskDenseModel(TINY_SWIN, tasks=tasks, num_classes=dict(semseg=21, human_parts=7), plan=plan,
                               decoder=dict(channels=(4, 4, 8, 8), expand=2), **kw)


def batch(b: int = 2, size: int = 32) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(0)
    gt = {'semseg': torch.randint(0, 21, (b, size, size), generator=g),
          'human_parts': torch.full((b, size, size), 255),  # no person: every pixel ignored
          'sal': torch.randint(0, 2, (b, size, size), generator=g),
          'normals': torch.nn.functional.normalize(torch.randn(b, 3, size, size, generator=g), dim=1)}
    return torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8).float(), gt


def test_stage_maps_are_nchw_and_decoders_reach_the_input_size():
    model = tiny_model()
    x, _ = batch()
    maps = model.stage_maps(x)
    assert [tuple(m.shape) for m in maps] == [(2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2)]
    out = model(x, mode='tensor')
    assert {t: tuple(v.shape) for t, v in out.items()} == {
        'semseg': (2, 21, 32, 32), 'human_parts': (2, 7, 32, 32), 'sal': (2, 1, 32, 32), 'normals': (2, 3, 32, 32)}


def test_merged_taps_are_the_patch_merging_outputs_of_the_stages():
    model = tiny_model(taps='merged').eval()  # eval: no random drop path between the two passes
    x, _ = batch()
    maps = model.stage_maps(x)
    assert [tuple(m.shape) for m in maps] == [(2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2), (2, 128, 2, 2)]
    stages = model.backbone.forward_intermediates(x, intermediates_only=True, output_fmt='NCHW')
    merges = [layer.downsample for layer in model.backbone.layers[1:]]
    expected = [m(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) for m, f in zip(merges, stages)] + stages[-1:]
    for got, want in zip(maps, expected):
        torch.testing.assert_close(got, want)
    assert not any(m._forward_hooks for m in merges)  # the capturing hooks are gone again


def test_nhwc_stage_maps_are_permuted(monkeypatch):
    model = tiny_model()
    x, _ = batch()
    nchw = model.stage_maps(x)
    asked = {}

    def channels_last(inputs, **kw):  # a backbone that returns (B, H, W, C) grids whatever it is asked
        asked.update(kw)
        return [m.permute(0, 2, 3, 1) if i else m for i, m in enumerate(nchw)]  # stage 0: H = W = C, ambiguous

    monkeypatch.setattr(model.backbone, 'forward_intermediates', channels_last)
    assert all(torch.equal(a, b) for a, b in zip(model.stage_maps(x), nchw))
    assert asked == {'intermediates_only': True, 'output_fmt': 'NCHW'}


def test_backbone_runs_once_per_task_only_when_conditioned():
    calls = []
    for plan, expected in (('lora', 1), (POLY, 4)):
        model = tiny_model(plan)
        calls.clear()
        handle = model.backbone.patch_embed.register_forward_hook(lambda *a: calls.append(1))
        model(batch()[0], mode='tensor')
        handle.remove()
        assert len(calls) == expected, plan


def test_polyhistor_model_starts_at_decoders_only_and_tasks_differ_after_training_step():
    poly, plain = tiny_model(POLY).eval(), tiny_model('linear').eval()  # eval: no drop-path, fixed BN
    plain.decoders.load_state_dict(poly.decoders.state_dict())
    x, gt = batch()
    before = poly(x, mode='tensor')
    for t, v in plain(x, mode='tensor').items():
        torch.testing.assert_close(before[t], v, rtol=0, atol=1e-5)  # zero up-projections: frozen features
    assert poly.backbone.petl_plan[0]['tasks'] == list(PASCAL)  # filled in from the model's tasks
    opt = torch.optim.SGD([p for p in poly.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        loss = sum(poly(x, gt, mode='loss').values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        maps = {}
        for task in ('semseg', 'sal'):
            with pv.tuner_context(task=task):
                maps[task] = poly.stage_maps(x)[0]
    assert (maps['semseg'] - maps['sal']).abs().max() > 1e-6


def test_losses_and_predictions_follow_the_dataset_and_metric_formats():
    model = tiny_model()
    x, gt = batch()
    losses = model(x, gt, mode='loss')
    assert set(losses) == {'loss_semseg', 'loss_human_parts', 'loss_sal', 'loss_normals'}
    assert losses['loss_human_parts'].item() == 0.0  # every pixel ignored: no loss, no NaN
    assert math.isclose(losses['loss_semseg'].item(), math.log(21), rel_tol=0.2)
    preds = model(x, gt, mode='predict')
    assert len(preds) == 2
    p = preds[0]['pred']
    assert p['semseg'].shape == (32, 32) and p['semseg'].dtype == torch.int64
    assert p['sal'].shape == (1, 32, 32) and 0 <= p['sal'].min() <= p['sal'].max() <= 1
    torch.testing.assert_close(p['normals'].norm(dim=0), torch.ones(32, 32))
    metric = MultiTaskDenseMetric(tasks=PASCAL, num_classes=dict(semseg=21, human_parts=7))
    metric.process({}, preds)
    scores = metric.compute_metrics(metric.results)
    assert 0 <= scores['semseg/mIoU'] <= 100 and 0 <= scores['normals/mean'] <= 180


def test_depth_loss_skips_missing_measurements():
    model = tiny_model(tasks=('semseg', 'depth', 'normals'))
    pred = torch.full((1, 1, 2, 2), 2.0)
    gt = torch.tensor([[[[1.0, 0.0], [4.0, 0.0]]]])
    assert model.task_loss('depth', pred, gt).item() == pytest.approx((1 + 2) / 2)


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match='num_classes needs an entry'):
        MultiTaskDenseModel(TINY_SWIN, tasks=('semseg',))
    with pytest.raises(ValueError, match='unknown dense task'):
        MultiTaskDenseModel(TINY_SWIN, tasks=('edges',))
    with pytest.raises(ValueError, match='loss_weights'):
        tiny_model(loss_weights=dict(depth=1.0))
    with pytest.raises(ValueError, match='mode must be'):
        tiny_model()(batch()[0], mode='bogus')


def _loader(root, split_shuffle: bool) -> dict:
    return dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=split_shuffle),
                collate_fn=dict(type='default_collate'),
                dataset=dict(type='PascalContextMT', data_root=str(root), split='train',
                             pipeline=[dict(type='DenseResize', size=32), dict(type='DenseRandomHorizontalFlip')]))


def test_runner_trains_and_evaluates_on_fixture_data(pascal_root, tmp_path):  # noqa: F811
    setup_env.register_all_modules()
    cfg = Config(dict(
        default_scope='petl_vision', work_dir=str(tmp_path / 'work'),
        model=dict(type='MultiTaskDenseModel', backbone=TINY_SWIN, tasks=PASCAL,
                   num_classes=dict(semseg=21, human_parts=7), plan=POLY,
                   decoder=dict(channels=(4, 4, 8, 8), expand=2),
                   loss_weights=dict(semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0)),
        train_dataloader=_loader(pascal_root, True), val_dataloader=_loader(pascal_root, False),
        val_evaluator=dict(type='MultiTaskDenseMetric', tasks=PASCAL, num_classes=dict(semseg=21, human_parts=7)),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=4), val_cfg=dict(),
        optim_wrapper=dict(constructor='TrainableOptimWrapperConstructor', optimizer=dict(type='AdamW', lr=1e-2)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='TunerCheckpointHook', save_best='dense/semseg/mIoU')],
        randomness=dict(seed=0), log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    model = runner.model
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    sources = {n: p.clone() for n, p in model.named_parameters() if n.startswith('backbone.petl_sources.')}
    runner.train()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    moved = [n for n, p in model.named_parameters() if n in sources and not torch.equal(p, sources[n])]
    assert len(moved) == len(sources) > 0
    metrics = runner.val_loop.run()
    assert {'dense/semseg/mIoU', 'dense/human_parts/mIoU', 'dense/sal/maxF', 'dense/normals/mean'} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert (tmp_path / 'work' / 'tuners_best.safetensors').exists()
    # the best file restores the whole tuned model: tuners, the shared hypernetwork and the task decoders
    fresh = tiny_model(plan=POLY)
    fresh.eval(), model.eval()
    x, _ = batch()
    assert not torch.allclose(fresh(x)['semseg'], model(x)['semseg'])
    pv.load_tuners(fresh.backbone, tmp_path / 'work' / 'tuners_best.safetensors', owner=fresh)
    torch.testing.assert_close(fresh(x)['semseg'], model(x)['semseg'])


def test_tuner_file_with_decoders_loads_all_or_nothing(tmp_path):
    torch.manual_seed(1)
    model = tiny_model(plan=POLY)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    path = pv.save_tuners(model.backbone, tmp_path / 't.safetensors', owner=model)
    other = tiny_model(plan=POLY)
    decoders = {n: p.clone() for n, p in other.decoders.named_parameters()}
    pv.load_tuners(other.backbone, path)  # without owner: the backbone side only
    assert all(torch.equal(p, decoders[n]) for n, p in other.decoders.named_parameters())
    pv.load_tuners(other.backbone, path, owner=other)
    assert all(torch.equal(p, q) for p, q in zip(other.parameters(), model.parameters()))
    wider = MultiTaskDenseModel(TINY_SWIN, tasks=PASCAL, num_classes=dict(semseg=21, human_parts=7), plan=POLY,
                                decoder=dict(channels=(4, 4, 8, 8), expand=3))  # other decoders: refused, unchanged
    before = {n: p.clone() for n, p in wider.named_parameters()}
    with pytest.raises(ValueError, match='has shape'):
        pv.load_tuners(wider.backbone, path, owner=wider)
    assert all(torch.equal(p, before[n]) for n, p in wider.named_parameters())
