"""Every shipped training config trains with the exact-resume loop, checkpoints the quick starts every epoch, takes
its length from one key (``train_cfg.max_epochs``: the cosine schedule follows) and lets the command line switch
the loop (``--cfg-options train_cfg.type=...``)."""
import math
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import EpochBasedTrainLoop

from petl_vision.engine import ResumableEpochBasedTrainLoop, check_train_cfg
from tests.conftest import load_tool
from tests.engine.tiny_run import build_runner, tiny_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
ALL = sorted(p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts)
# loading costs ~0.1 s a config: every quick start and the first config of every other folder (each folder shares
# its bases); the text check below covers every file
SAMPLE = sorted({p for p in ALL if p.parent.name.startswith('quickstart')} |
                {min(p for p in ALL if p.parent == folder) for folder in {p.parent for p in ALL}})
QUICKSTART_LORA = CONFIGS / 'quickstart' / 'lora.py'

train_tool = load_tool('train.py')


def test_no_config_sets_its_own_loop_or_schedule_end():
    for path in ALL:
        text = path.read_text()
        assert 'by_epoch=True, max_epochs' not in text and 'EpochBasedTrainLoop' not in text, path
        assert 'T_max=' not in text, path
        assert not any('CosineAnnealingLR' in line and 'end=' in line for line in text.splitlines()), path


@pytest.mark.parametrize('path', SAMPLE, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_config_trains_with_the_resumable_loop(path):
    cfg = Config.fromfile(str(path))
    if cfg.get('train_cfg') is None:  # few-shot evaluation (tools/fewshot_eval.py) and continual sequences
        assert 'fewshot_eval' in path.read_text() or 'sequence' in cfg  # (tools/continual.py: a recipe per stage)
        return
    assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop' and 'by_epoch' not in cfg.train_cfg
    for scheduler in cfg.param_scheduler:
        if scheduler.type == 'CosineAnnealingLR':
            assert 'end' not in scheduler and 'T_max' not in scheduler  # ends at train_cfg.max_epochs
    if path.parent.name.startswith('quickstart'):
        checkpoint = cfg.default_hooks.checkpoint
        assert (checkpoint.interval, checkpoint.max_keep_ckpts, checkpoint.get('by_epoch', True)) == (1, 2, True)


def built_schedule(cfg: Config) -> tuple[list, int]:
    """What Runner.train builds before its first step: the loop, then the schedulers (their default ``end``
    comes from the loop); returns the schedulers and the iterations per epoch."""
    runner = build_runner(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    return runner.build_param_scheduler(runner.param_schedulers), len(runner.train_dataloader)


def final_lr(schedulers: list, iters: int) -> float:
    for _ in range(iters - 1):
        for scheduler in schedulers:
            scheduler.step()
    return schedulers[0].optimizer.param_groups[0]['lr']


def test_max_epochs_alone_sets_the_quick_start_schedule(tmp_path):
    cfg = Config.fromfile(str(QUICKSTART_LORA))
    cfg.merge_from_dict({'train_cfg.max_epochs': 3, 'work_dir': str(tmp_path)})
    (cosine,), per_epoch = built_schedule(cfg)
    assert per_epoch == 7 and (cosine.begin, cosine.end, cosine.T_max) == (0, 21, 21)
    # after 20 of 21 steps: lr 3e-3 (1 + cos(20 pi / 21)) / 2 = 1.7e-5 (the 30-epoch cosine would be at 2.9e-3)
    assert final_lr([cosine], 21) == pytest.approx(3e-3 * (1 + math.cos(math.pi * 20 / 21)) / 2, rel=1e-6)


def test_max_epochs_alone_sets_the_generated_configs_warm_up_and_cosine(tmp_path):
    """The ViT-B method configs' schedule (10 warm-up epochs, cosine after) on a tiny run of 12 epochs x 8 iters."""
    schedule = Config.fromfile(str(CONFIGS / 'lora' / 'lora_vit-b16-in21k_cifar100.py')).param_scheduler
    cfg = tiny_config(tmp_path, param_scheduler=schedule)
    cfg.merge_from_dict({'train_cfg.max_epochs': 12})
    (warmup, cosine), per_epoch = built_schedule(cfg)
    assert per_epoch == 8 and (warmup.end, cosine.begin, cosine.end, cosine.T_max) == (80, 80, 96, 16)
    assert final_lr([warmup, cosine], 96) < 3e-3 * 0.01  # annealed by the last step, not at 100 / 12 of the way


def test_the_loop_is_switched_from_the_command_line(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, 'argv', ['train.py', str(QUICKSTART_LORA), '--work-dir', str(tmp_path), '--cfg-options',
                                      'train_cfg.type=EpochBasedTrainLoop'])
    cfg = train_tool.build_config(train_tool.parse_args())
    runner = build_runner(cfg)
    loop = runner.build_train_loop(runner._train_loop)
    assert type(loop) is EpochBasedTrainLoop and loop.max_epochs == 30


def test_a_config_may_name_the_loop_and_keep_by_epoch(tmp_path):
    """A config written for mmengine's default loop (``by_epoch=True``) on top of a base that names the loop."""
    base = tmp_path / 'mine.py'
    base.write_text(f"_base_ = ['{QUICKSTART_LORA}']\ntrain_cfg = dict(by_epoch=True, max_epochs=5)\n")
    cfg = Config.fromfile(str(base))
    cfg.work_dir = str(tmp_path)
    runner = build_runner(cfg)
    loop = runner.build_train_loop(runner._train_loop)
    assert type(loop) is ResumableEpochBasedTrainLoop and loop.max_epochs == 5
    contradiction = Config(dict(train_cfg=dict(type='ResumableEpochBasedTrainLoop', by_epoch=False, max_iters=5)))
    with pytest.raises(ValueError, match="by_epoch=False; for iteration-based training set train_cfg.type="):
        check_train_cfg(contradiction)
