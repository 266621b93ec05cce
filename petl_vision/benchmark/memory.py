"""Run :mod:`.memory_child` once per method and collect its peak training-step memory."""
import json
import os
import subprocess
import sys
from pathlib import Path

import petl_vision


def measure_step_memory(method: str, model: str, batch_size: int, img_size: int, num_classes: int, dtype: str,
                        device: str, threads: int | None = None) -> dict:
    """``{'method', 'peak_mb', 'how'}`` from a fresh Python process (see :mod:`.memory_child`)."""
    cmd = [sys.executable, '-m', 'petl_vision.benchmark.memory_child', '--model', model, '--method', method,
           '--batch-size', str(batch_size), '--img-size', str(img_size), '--num-classes', str(num_classes),
           '--dtype', dtype, '--device', device]
    root = str(Path(petl_vision.__file__).resolve().parents[1])  # works without `pip install -e .`
    env = {**os.environ, **({'OMP_NUM_THREADS': str(threads)} if threads else {}),
           'PYTHONPATH': os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')]))}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f'memory measurement of {method!r} failed (exit {done.returncode}); its stderr:\n'
                           f'{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])
