"""Exact resume: a run interrupted mid-epoch and resumed from its Runner checkpoint (loaded with
``weights_only=True``) ends with the same weights, losses and validation results as an uninterrupted run."""
import importlib

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from tests.engine.tiny_run import build_runner, tiny_config, trainable_state

safe_load_module = importlib.import_module('petl_vision.engine.safe_load')  # the package's `safe_load` is a function

MAX_ITERS = 16  # 2 epochs x 8 batches; iteration checkpoints at 5, 10, 15


class Interrupt(Exception):
    """Stands in for a killed job."""


class CountSteps(Hook):
    """Counts the training steps a runner makes; raises :class:`Interrupt` after ``stop_after`` steps."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after, self.steps = stop_after, 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.steps += 1
        if self.steps == self.stop_after:
            raise Interrupt(f'killed after iteration {runner.iter + 1}')


def train(cfg, stop_after: int | None = None) -> tuple[Runner, CountSteps]:
    runner = build_runner(cfg)
    counter = CountSteps(stop_after)
    runner.register_hook(counter)
    runner.train()
    return runner, counter


def interrupted_then_resumed(work_dir, loop: str, monkeypatch) -> tuple[Runner, CountSteps, list[str]]:
    """Killed at iteration 13 (mid-epoch 2, last checkpoint ``iter_10.pth``), then resumed with ``resume=True``
    (the work dir's latest checkpoint) in a fresh Runner."""
    with pytest.raises(Interrupt):
        train(tiny_config(work_dir, train_cfg=dict(type=loop, max_epochs=2, val_interval=1)), stop_after=13)
    loaded = []
    real_safe_load = safe_load_module.safe_load
    monkeypatch.setattr(safe_load_module, 'safe_load', lambda path, *a: loaded.append(str(path)) or
                        real_safe_load(path, *a))
    runner, counter = train(tiny_config(work_dir, resume=True, train_cfg=dict(type=loop, max_epochs=2,
                                                                              val_interval=1)))
    return runner, counter, loaded


@pytest.fixture(scope='module')
def straight(tmp_path_factory) -> Runner:
    runner, counter = train(tiny_config(tmp_path_factory.mktemp('straight')))
    assert counter.steps == MAX_ITERS
    return runner


def test_resumed_mid_epoch_run_equals_uninterrupted_run(straight, tmp_path, monkeypatch):
    resumed, counter, loaded = interrupted_then_resumed(tmp_path, 'ResumableEpochBasedTrainLoop', monkeypatch)

    assert loaded == [str(tmp_path / 'iter_10.pth')]  # through the weights_only loader
    assert counter.steps == MAX_ITERS - 10 and resumed.iter == MAX_ITERS and resumed.epoch == 2
    for name, value in trainable_state(straight).items():
        assert torch.equal(trainable_state(resumed)[name], value), name  # bit for bit
    # losses of the iterations after the checkpoint, and both epochs' validation (the first restored from the
    # checkpoint's message hub), are identical
    loss, resumed_loss = (r.message_hub.get_scalar('train/loss').data[0] for r in (straight, resumed))
    assert resumed_loss[-6:].tolist() == loss[-6:].tolist()
    top1, resumed_top1 = (r.message_hub.get_scalar('val/accuracy/top1').data[0] for r in (straight, resumed))
    assert len(top1) == 2 and resumed_top1.tolist() == top1.tolist()
    images = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    batch = {'inputs': images, 'data_samples': torch.zeros(4, dtype=torch.long)}
    scores = [torch.stack([p['pred_score'] for p in r.model.test_step(batch)]) for r in (straight, resumed)]
    assert torch.equal(scores[0], scores[1])


def test_mmengine_epoch_loop_retrains_the_resumed_epoch(tmp_path, monkeypatch):
    """Why ResumableEpochBasedTrainLoop exists: mmengine 0.10's EpochBasedTrainLoop restarts epoch 2 at its first
    batch, training batches 9 and 10 twice and making 8 steps instead of 6 (18 in all instead of 16)."""
    resumed, counter, _ = interrupted_then_resumed(tmp_path, 'EpochBasedTrainLoop', monkeypatch)
    assert counter.steps == 8 and resumed.iter == MAX_ITERS + 2
