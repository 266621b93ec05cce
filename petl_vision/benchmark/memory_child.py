"""Peak memory of one method's training step, measured in a fresh process so methods cannot share a peak.

    python -m petl_vision.benchmark.memory_child --model M --method lora --batch-size 8 --img-size 224 \
        --num-classes 100 --dtype float32 --device cpu [--grad-checkpointing]

prints one JSON line ``{"method": ..., "peak_mb": ..., "how": ...}``. The baseline is taken after the model is
built (weights excluded); the peak covers two steps, so gradients, AdamW state and activations are all in it.
"""
import argparse
import json
import resource
from pathlib import Path

import psutil
import torch

from .methods import build_method, example_batch, set_grad_checkpointing
from .timing import DTYPES, TrainStep

STEPS = 2
_CLEAR_REFS = Path('/proc/self/clear_refs')
MB = 2 ** 20


def _reset_cpu_peak() -> bool:
    """Reset Linux's peak RSS (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text('5')
    except OSError:
        return False
    return True


def _cpu_peak_bytes(reset: bool) -> int:
    if reset:
        status = Path('/proc/self/status').read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith('VmHWM:'))
        return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    model = build_method(args.method, args.model, args.img_size, args.num_classes).to(device)
    if args.grad_checkpointing:
        set_grad_checkpointing(model)
    x, y = example_batch(args.model, args.batch_size, args.img_size, args.num_classes, device)
    step = TrainStep(model, x, y, DTYPES[args.dtype])
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(STEPS):
            step()
        peak, how = torch.cuda.max_memory_allocated(device), 'torch.cuda.max_memory_allocated minus allocated ' \
            'after model build, fresh process per method'
    else:
        reset = _reset_cpu_peak()
        base = psutil.Process().memory_info().rss
        for _ in range(STEPS):
            step()
        peak = _cpu_peak_bytes(reset)
        how = ('peak RSS (VmHWM, reset after model build)' if reset else 'peak RSS (getrusage ru_maxrss)') + \
            ' minus RSS after model build, fresh process per method'
    return {'method': args.method, 'peak_mb': (peak - base) / MB, 'how': how}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ('--model', '--method', '--dtype', '--device'):
        parser.add_argument(flag, required=True)
    for flag in ('--batch-size', '--img-size', '--num-classes'):
        parser.add_argument(flag, type=int, required=True)
    parser.add_argument('--grad-checkpointing', action='store_true')
    print(json.dumps(measure(parser.parse_args())))


if __name__ == '__main__':
    main()
