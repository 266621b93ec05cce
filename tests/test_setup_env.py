"""setup_env keeps mmengine's log to what a user can act on: a real training run (tests/training's tiny ViT-B layout
on CIFAR-format fixture data, a schedule with a paramwise_cfg) logs none of the messages of NOT_ACTIONABLE, on the
console or in its log file, while other warnings still come through; console_log_level quiets only the console."""
import logging
from pathlib import Path

from mmengine.logging import MMLogger, print_log
from mmengine.runner import Runner

from petl_vision.setup_env import NOT_ACTIONABLE, console_log_level, register_all_modules
from tests.training.test_train_end_to_end import BASE, dataset_fixture, tiny_config

register_all_modules()


def _tiny_cifar_run(tmp_path: Path) -> Runner:
    data_root, extra = dataset_fixture('cifar100', tmp_path)
    base = [BASE / 'models' / 'vit-b16-in21k.py', BASE / 'datasets' / 'cifar100.py',
            BASE / 'schedules' / 'adamw_cosine_100e.py', BASE / 'default_runtime.py']
    return Runner.from_cfg(tiny_config(base, tmp_path, data_root, extra, num_classes=100))


def _log_file(runner: Runner) -> str:
    return (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()


def test_training_logs_no_unactionable_warning_but_keeps_the_others(tmp_path, capfd):
    runner = _tiny_cifar_run(tmp_path)
    print_log('a warning a user can act on', logger='current', level=logging.WARNING)
    runner.train()
    console, log = capfd.readouterr().out, _log_file(runner)
    for text in (console, log):
        assert not [m for m in NOT_ACTIONABLE if m in text]
        assert 'Epoch(train)' in text  # the INFO log itself is still there
        warnings = [line for line in text.splitlines() if ' - WARNING - ' in line]
        assert len(warnings) == 1 and warnings[0].endswith('a warning a user can act on')
    # what was dropped: 2 blocks x (qkv, proj, fc1, fc2 weights and biases, 2 norms) + embeddings + final norm
    assert sum(p.requires_grad is False for p in runner.model.parameters()) > 20


def test_console_log_level_quiets_the_console_only(tmp_path, capfd):
    with console_log_level('WARNING'):
        runner = _tiny_cifar_run(tmp_path)
        runner.train()
    console, log = capfd.readouterr().out, _log_file(runner)
    assert console == ''
    assert 'Epoch(train)' in log and 'Config:' in log
    later = MMLogger.get_instance('petl_vision_after_context', log_level='INFO')
    assert [type(h) for h in later.handlers if h.level == logging.INFO] == [logging.StreamHandler]
