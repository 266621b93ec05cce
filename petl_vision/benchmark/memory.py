"""Training memory: the peak of a step in a fresh process (:mod:`.memory_child`), and what autograd saves."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import petl_vision

from .timing import autocast

MB = 2 ** 20


def saved_for_backward_mb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> float:
    """MB of the tensors autograd keeps for backward after a training forward (loss included).

    Deterministic, unlike a peak RSS: every distinct storage that a ``saved_tensors_hooks`` pack sees counts
    once, the model's own parameters (weights kept for the input gradient) do not count.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(x.device, dtype):
        loss = F.cross_entropy(model(x), y)
    del loss  # frees the graph and what it saved
    return sum(seen.values()) / MB


def measure_step_memory(method: str, model: str, batch_size: int, img_size: int, num_classes: int, dtype: str,
                        device: str, threads: int | None = None, grad_checkpointing: bool = False) -> dict:
    """``{'method', 'peak_mb', 'how'}`` from a fresh Python process (see :mod:`.memory_child`)."""
    cmd = [sys.executable, '-m', 'petl_vision.benchmark.memory_child', '--model', model, '--method', method,
           '--batch-size', str(batch_size), '--img-size', str(img_size), '--num-classes', str(num_classes),
           '--dtype', dtype, '--device', device, *(['--grad-checkpointing'] if grad_checkpointing else [])]
    root = str(Path(petl_vision.__file__).resolve().parents[1])  # works without `pip install -e .`
    env = {**os.environ, **({'OMP_NUM_THREADS': str(threads)} if threads else {}),
           'PYTHONPATH': os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')]))}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f'memory measurement of {method!r} failed (exit {done.returncode}); its stderr:\n'
                           f'{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])
