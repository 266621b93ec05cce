"""Data-parallel training on 2 CPU processes (gloo) through ``tools/dist_train.sh`` (torchrun, ``tools/train.py
--launcher pytorch``): DDP and FSDP (FlexibleRunner) end where a 1-process run with the same global batch ends, with
random augmentation on (each sample draws from its own seed, whichever rank loads it), log the loss of the whole
batch (the mean over ranks), and gather validation exactly once per sample. Both 2-process runs start together in
one fixture."""
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import FlexibleRunner, Runner

from petl_vision.engine import init_distributed
from petl_vision.tuners import read_tuner_file
from tests.engine.tiny_run import build_runner, tiny_config

REPO = Path(__file__).parents[2]
VAL_SIZE = 45  # not divisible by 2 ranks: DefaultSampler pads rank 1, collect_results drops the pad


def config(work_dir: Path, batch_size: int, **overrides):
    return tiny_config(work_dir, batch_size=batch_size, val_size=VAL_SIZE, augment=True,
                       custom_hooks=[dict(type='TunerCheckpointHook')],
                       visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
                       val_evaluator=[dict(type='Accuracy', topk=(1,)),
                                      dict(type='DumpResults', out_file_path=str(work_dir / 'val.pkl'))],
                       **overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_dist_train(work_dir: Path, *args: str) -> subprocess.Popen:
    """``tools/dist_train.sh CONFIG 2``: 2 ranks of tools/train.py, 4 images each per step (global batch 8)."""
    work_dir.mkdir()
    cfg_path = work_dir.with_suffix('.py')
    config(work_dir, batch_size=4).dump(cfg_path)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHON': sys.executable, 'PORT': str(free_port())}
    return subprocess.Popen(['bash', str(REPO / 'tools' / 'dist_train.sh'), str(cfg_path), '2', *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group, so a failed test can end the ranks


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> dict[str, Path]:
    """Work dirs of the 2-process DDP and FSDP runs, and of the 1-process run with batch 8 (trained meanwhile)."""
    root = tmp_path_factory.mktemp('dist')
    procs = {'ddp': start_dist_train(root / 'ddp'), 'fsdp': start_dist_train(root / 'fsdp', '--fsdp')}
    try:
        build_runner(config(root / 'single', batch_size=8)).train()
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, f'{name} run failed:\n{out[-4000:]}'
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return {name: root / name for name in ('ddp', 'fsdp', 'single')}


def tuner_tensors(work_dir: Path) -> dict[str, torch.Tensor]:
    return read_tuner_file(work_dir / 'tuners_latest.safetensors')[1]


def logged_losses(work_dir: Path) -> list[float]:
    """The training loss rank 0 logged at each of the 16 iterations (LoggerHook interval 1, LocalVisBackend)."""
    (scalars,) = work_dir.glob('*/vis_data/scalars.json')
    losses = [record['loss'] for record in map(json.loads, scalars.read_text().splitlines()) if 'loss' in record]
    assert len(losses) == 16
    return losses


def predictions(work_dir: Path) -> list[dict]:
    with open(work_dir / 'val.pkl', 'rb') as f:  # written by this test's own runs
        return pickle.load(f)


@pytest.mark.parametrize('kind', ['ddp', 'fsdp'])
def test_two_processes_match_one_process_with_the_same_global_batch(runs, kind):
    single, parallel = tuner_tensors(runs['single']), tuner_tensors(runs[kind])
    assert single.keys() == parallel.keys() and len(single) == 6  # LoRA A/B of 2 blocks, head weight/bias
    for name, value in single.items():
        # DDP averages the 2 ranks' gradients of 4-image means = the 8-image mean, up to float summation order
        torch.testing.assert_close(parallel[name], value, rtol=0, atol=1e-6, msg=name)
    assert any(float(v.abs().max()) > 0 for k, v in single.items() if 'lora_B' in k)  # LoRA B left its zero init
    for a, b in zip(predictions(runs['single']), predictions(runs[kind])):
        torch.testing.assert_close(b['pred_score'], a['pred_score'], rtol=0, atol=1e-5)


@pytest.mark.parametrize('kind', ['ddp', 'fsdp'])
def test_the_logged_loss_is_the_whole_batch_s_the_mean_over_ranks(runs, kind):
    """Rank 0 logs the mean of the 2 ranks' 4-image losses = the 8-image loss of the 1-process run (it logged its
    own 4 images before)."""
    single, parallel = logged_losses(runs['single']), logged_losses(runs[kind])
    assert parallel == pytest.approx(single, rel=0, abs=2e-6)
    assert len(set(single)) == 16  # the losses move (the comparison is not of constants)


@pytest.mark.parametrize('kind', ['ddp', 'fsdp'])
def test_validation_is_gathered_once_per_sample_in_dataset_order(runs, kind):
    preds = predictions(runs[kind])
    labels = [p['gt_label'] for p in predictions(runs['single'])]
    assert len(preds) == VAL_SIZE
    assert [p['gt_label'] for p in preds] == labels and len(set(labels)) > 1


def test_ddp_run_used_the_cpu_capable_wrapper_and_fsdp_the_flexible_runner(runs):
    ddp_cfg = (runs['ddp'] / 'ddp.py').read_text()  # the config as the Runner saw it, dumped into the work dir
    fsdp_cfg = (runs['fsdp'] / 'fsdp.py').read_text()
    assert "type='AnyDeviceDDP'" in ddp_cfg and 'find_unused_parameters=False' in ddp_cfg
    assert "type='FSDPStrategy'" in fsdp_cfg and "device_id='cpu'" in fsdp_cfg
    assert (runs['fsdp'] / 'iter_16.pth' / 'rank1.pth').is_file()  # FSDP saved each rank's shard


def test_build_runner_picks_runner_or_flexible_runner(tmp_path):
    assert type(build_runner(tiny_config(tmp_path / 'plain'))) is Runner
    flexible = build_runner(tiny_config(tmp_path / 'fsdp', strategy=dict(type='FSDPStrategy')))
    assert isinstance(flexible, FlexibleRunner)
    assert flexible.cfg.strategy.model_wrapper == {'device_id': 'cpu'}  # FSDP reads an int as a CUDA device
    with pytest.raises(ValueError, match='both `strategy`'):
        build_runner(tiny_config(tmp_path / 'both', strategy=dict(type='FSDPStrategy'),
                                 model_wrapper_cfg=dict(type='AnyDeviceDDP')))


def test_distributed_start_on_cpu_needs_gloo_and_torchrun(monkeypatch):
    with pytest.raises(RuntimeError, match="'nccl' needs CUDA GPUs.*env_cfg.dist_cfg.backend=gloo"):
        init_distributed('pytorch', dict(backend='nccl'))
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match=r"expects torchrun's environment; \['RANK'.*torchrun --nproc_per_node"):
        init_distributed('pytorch', dict(backend='gloo'))


@pytest.mark.parametrize('args, message', [
    ([], 'usage: '), (['cfg.py', '0'], "GPUS must be a positive number of processes per node, got '0'"),
    (['missing.py', '2'], "config file 'missing.py' does not exist")])
def test_dist_train_sh_explains_bad_arguments(args, message):
    result = subprocess.run(['bash', str(REPO / 'tools' / 'dist_train.sh'), *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr
