"""The shipped quick-start LoRA config (random affine augmentation on), shortened to 3 epochs: a run SIGKILLed in
the middle of epoch 2 and resumed with ``tools/train.py --resume`` ends bit-identical to an uninterrupted run.

Three ``tools/train.py`` processes, one thread each: the uninterrupted run (the shipped config as it is) and the
run to be killed start together; the killed run's config adds only a hook that SIGKILLs its process after
iteration 11 (of 21; 7 per epoch), so its last checkpoint is ``epoch_1.pth``."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from petl_vision.tuners import read_tuner_file

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART_LORA = ROOT / 'configs' / 'quickstart' / 'lora.py'
SHORT = ['--cfg-options', 'train_cfg.max_epochs=3']


def train(config: Path, work_dir: Path, *args: str, kill_after: int | None = None) -> subprocess.Popen:
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    env.pop('PETL_TEST_KILL_AFTER_ITER', None)
    if kill_after is not None:
        env['PETL_TEST_KILL_AFTER_ITER'] = str(kill_after)
    return subprocess.Popen([sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir',
                             str(work_dir), *args, *SHORT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def killable_config(tmp_path: Path) -> Path:
    """The quick-start LoRA config plus the SIGKILL hook (the shipped tuner hook kept as it is)."""
    path = tmp_path / 'lora_killable.py'
    path.write_text(f"_base_ = ['{QUICKSTART_LORA}']\n"
                    "custom_imports = dict(imports=['tests.training.kill_hook'], allow_failed_imports=False)\n"
                    "custom_hooks = [dict(type='TunerCheckpointHook', save_best='accuracy/top1', rule='greater'),\n"
                    "                dict(type='SigkillAfterIter')]\n")
    return path


def test_quickstart_lora_killed_mid_epoch_and_resumed_ends_bit_identical(tmp_path):
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    procs = [train(QUICKSTART_LORA, straight), train(killable_config(tmp_path), killed, kill_after=11)]
    (straight_rc, straight_out), (killed_rc, killed_out) = map(finish, procs)
    assert straight_rc == 0, straight_out[-3000:]
    assert killed_rc == -signal.SIGKILL, killed_out[-3000:]
    assert (killed / 'last_checkpoint').read_text().endswith('epoch_1.pth') and not (killed / 'epoch_2.pth').exists()
    assert json.loads((killed / 'tuners_best.json').read_text())['epoch'] == 1  # validated epoch 1, not 2

    resumed_rc, resumed_out = finish(train(killable_config(tmp_path), killed, '--resume'))
    assert resumed_rc == 0, resumed_out[-3000:]
    assert f'resuming from {killed / "epoch_1.pth"}' in resumed_out

    _, reference = read_tuner_file(straight / 'tuners_latest.safetensors')
    _, tensors = read_tuner_file(killed / 'tuners_latest.safetensors')
    assert reference.keys() == tensors.keys() and any('lora_B' in k for k in reference)
    for name, value in reference.items():
        assert torch.equal(tensors[name], value), name  # bit for bit
    assert json.loads((killed / 'tuners_best.json').read_text()) == json.loads((straight / 'tuners_best.json')
                                                                                .read_text())
    # checkpoints every epoch, the last two kept, each with its tuner file
    assert sorted(p.name for p in killed.glob('*.pth')) == ['epoch_2.pth', 'epoch_3.pth']
    assert sorted(p.name for p in killed.glob('tuners_epoch_*')) == ['tuners_epoch_2.safetensors',
                                                                    'tuners_epoch_3.safetensors']
