"""The PHA benchmark (--pha): structure, backbone passes, comparable baselines and the loss timed; not timings."""
import pytest
import torch

from petl_vision.benchmark.pha import VARIANTS, PHABenchConfig, build_variant, multitask_loss, pha_table, run_pha

TINY = dict(model='vit_tiny_patch16_224', img_size=32, batch_size=4, tasks=2, rank=8, block=1, num_classes=3,
            rounds=1, warmup=0)
C, L = 192, 12  # vit_tiny: width, blocks


def test_rows_ratios_parameters_and_backbone_passes():
    report = run_pha(PHABenchConfig(**TINY), log=lambda m: None)
    rows = report['rows']
    assert list(rows) == list(VARIANTS)
    assert rows['per_task']['train_ratio'] == 1.0 and rows['per_task']['infer_ratio'] == 1.0
    for v in VARIANTS:
        assert rows[v]['train_ratio'] == pytest.approx(rows[v]['train_cpu_s'] / rows['per_task']['train_cpu_s'])
    # the pre-pass is a second (frozen) backbone pass, in training and at inference; an early block is not
    assert (rows['pha_prepass']['block_calls_train'], rows['pha_prepass']['block_calls_infer']) == (2, 2)
    assert (rows['pha_prepass_early']['block_calls_train'], rows['pha_prepass_early']['block_calls_infer']) == (2, 2)
    assert (rows['pha_block']['block_calls_train'], rows['pha_block']['block_calls_infer']) == (1, 1)
    assert (rows['per_task']['block_calls_train'], rows['per_task']['block_calls_infer']) == (1, 1)
    heads = 2 * (C * 3 + 3)
    adapter = L * (C * 8 + 8 + 8 * C + C)  # one bottleneck per block: down, its bias, up, its bias
    assert rows['per_task']['trainable'] == 2 * adapter + heads
    assert rows['pha_block']['retriever'] == C * 128 + 128 + 128 * 64 + 64 and rows['pha_block']['prototypes'] == 128
    assert rows['pha_prepass']['trainable'] == rows['pha_block']['trainable'] == \
        rows['pha_block']['hypernetwork'] + 128 + rows['pha_block']['retriever'] + heads
    table = pha_table(report)
    assert 'retriever on block 1' in table and '| 2 / 2 |' in table and table.count('\n') == 5
    assert 'stopped after block 1' in table


def test_the_per_task_adapter_has_the_shape_of_a_generated_one_and_the_pha_step_has_every_loss_term():
    cfg = PHABenchConfig(**TINY)
    pha, per_task = build_variant(cfg, 'pha_block'), build_variant(cfg, 'per_task')
    # block 0's generated adapter (per prototype) against task0's adapter on block 0
    shapes = [tuple(t.shape[1:]) for t in pha.source.generate(pha.source.prototypes.weight, 0, C, 8)]
    theirs = sorted(tuple(sorted(p.shape)) for n, p in per_task.backbone.named_parameters()
                    if p.requires_grad and '.blocks.0.' in f'.{n}' and '.task0.' in f'.{n}.')
    assert sorted(tuple(sorted(s)) for s in shapes) == theirs  # (d, r), (r,), (r, d), (d,)
    tasks = ['task0', 'task1', 'task0', 'task1']
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    terms = pha(x, y, mode='loss', task=tasks)
    assert set(terms) >= {'loss', 'loss_ins_ins', 'loss_pro_ins'}
    torch.testing.assert_close(multitask_loss(tasks)(pha, x, y),
                               terms['loss'] + terms['loss_ins_ins'] + terms['loss_pro_ins'])
    with pytest.raises(ValueError, match='pha-tasks'):
        PHABenchConfig(tasks=1)
