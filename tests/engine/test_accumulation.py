"""Gradient accumulation (``optim_wrapper.accumulative_counts``): 2 micro-batches of 4 make the same updates as
batches of 8.

This holds for the tiny ViT because every sample's loss depends on that sample alone (LayerNorm, no BatchNorm, no
dropout) and mmengine divides each micro-batch's loss by ``accumulative_counts``. It would not hold with BatchNorm
(statistics over 4 instead of 8 images) or with a schedule stepped per iteration (the scheduler counts micro-batches,
so warm-up would end after half as many updates): the schedule here is per epoch.
"""
import pytest
import torch

from tests.engine.tiny_run import build_runner, max_abs_diff, tiny_config, trainable_state

SCHEDULE = [dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=0, end=2)]


def trained(work_dir, batch_size: int, accumulate: int = 1) -> dict[str, torch.Tensor]:
    optim_wrapper = dict(constructor='TrainableOptimWrapperConstructor', accumulative_counts=accumulate,
                         optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-2))
    runner = build_runner(tiny_config(work_dir, batch_size=batch_size, optim_wrapper=optim_wrapper,
                                      param_scheduler=SCHEDULE, checkpoint_every=100))
    runner.train()
    return trainable_state(runner)


@pytest.fixture(scope='module')
def batch_of_8(tmp_path_factory) -> dict[str, torch.Tensor]:
    return trained(tmp_path_factory.mktemp('b8'), batch_size=8)


def test_accumulating_two_batches_of_4_equals_batches_of_8(batch_of_8, tmp_path):
    accumulated = trained(tmp_path, batch_size=4, accumulate=2)
    assert max_abs_diff(accumulated, batch_of_8) < 1e-6
    assert float(batch_of_8['backbone.head.weight'].abs().max()) > 0.01  # training moved the weights


def test_batches_of_4_without_accumulation_differ(batch_of_8, tmp_path):
    """The comparison above can fail: twice the updates on half the images end elsewhere."""
    assert max_abs_diff(trained(tmp_path, batch_size=4), batch_of_8) > 1e-2
