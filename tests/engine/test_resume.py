"""Exact resume: a run interrupted mid-epoch and resumed from its Runner checkpoint (loaded with
``weights_only=True``) ends with the same weights, losses and validation results as an uninterrupted run, also with
random augmentation loaded by persistent dataloader workers."""
import importlib
import json

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from petl_vision.datasets.transforms import RandomAffine
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


# augmentation on: a random affine jitter per image, loaded by 2 persistent workers
RUNS = {'plain': dict(), 'augmented': dict(augment=True, num_workers=2)}
BEST = [dict(type='TunerCheckpointHook', save_best='accuracy/top1')]


def interrupted_then_resumed(work_dir, loop: str, monkeypatch, **kwargs) -> tuple[Runner, CountSteps, list[str]]:
    """Killed at iteration 13 (mid-epoch 2, last checkpoint ``iter_10.pth``), then resumed with ``resume=True``
    (the work dir's latest checkpoint) in a fresh Runner."""
    with pytest.raises(Interrupt):
        train(tiny_config(work_dir, train_cfg=dict(type=loop, max_epochs=2, val_interval=1), **kwargs), stop_after=13)
    loaded = []
    real_safe_load = safe_load_module.safe_load
    monkeypatch.setattr(safe_load_module, 'safe_load', lambda path, *a: loaded.append(str(path)) or
                        real_safe_load(path, *a))
    runner, counter = train(tiny_config(work_dir, resume=True, train_cfg=dict(type=loop, max_epochs=2,
                                                                              val_interval=1), **kwargs))
    return runner, counter, loaded


@pytest.fixture(scope='module', params=sorted(RUNS))
def straight(request, tmp_path_factory) -> tuple[str, Runner]:
    runner, counter = train(tiny_config(tmp_path_factory.mktemp('straight'), **RUNS[request.param]))
    assert counter.steps == MAX_ITERS
    return request.param, runner


def test_resumed_mid_epoch_run_equals_uninterrupted_run(straight, tmp_path, monkeypatch):
    kind, straight = straight
    resumed, counter, loaded = interrupted_then_resumed(tmp_path, 'ResumableEpochBasedTrainLoop', monkeypatch,
                                                        **RUNS[kind])

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


def test_the_augmented_run_jitters_its_images_in_persistent_workers(straight):
    """Guards the test above: its augmented run does draw random transforms, in workers."""
    kind, runner = straight
    loader, augmented = runner.train_dataloader, kind == 'augmented'
    assert any(isinstance(t, RandomAffine) for t in loader.dataset.pipeline.transforms) == augmented
    assert (loader.num_workers, loader.persistent_workers) == ((2, True) if augmented else (0, False))


def test_resumed_run_replaces_the_best_tuner_file_only_with_a_better_one(tmp_path):
    """The best score so far is the work dir's tuners_best.json, also after a resume (it was None, so the first
    validation after a resume replaced a better file)."""
    with pytest.raises(Interrupt):
        train(tiny_config(tmp_path, custom_hooks=BEST), stop_after=13)
    record = tmp_path / 'tuners_best.json'
    record.write_text(json.dumps({**json.loads(record.read_text()), 'accuracy/top1': 100.0}))  # unbeatable
    best = (tmp_path / 'tuners_best.safetensors').read_bytes()
    resumed, _ = train(tiny_config(tmp_path, resume=True, custom_hooks=BEST))
    assert resumed.iter == MAX_ITERS and resumed.message_hub.get_scalar('val/accuracy/top1').current() < 100.0
    assert (tmp_path / 'tuners_best.safetensors').read_bytes() == best
    assert json.loads(record.read_text())['accuracy/top1'] == 100.0
