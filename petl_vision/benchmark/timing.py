"""Interleaved timing: every method runs once per round, round after round, and we keep the median.

Round-robin order spreads slow drifts of the machine (other jobs, thermal state) over all methods
instead of charging them to whichever ran last.
"""
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    """Mixed precision for non-float32 dtypes (weights and optimizer stay float32)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


class TrainStep:
    """One training step: forward, cross-entropy, backward, AdamW over the trainable parameters only."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype, lr: float = 1e-5):
        self.model, self.x, self.y, self.dtype = model, x, y, dtype
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError('the model has no trainable parameter; a training step would do nothing')
        self.optimizer = torch.optim.AdamW(self.params, lr=lr)

    def __call__(self) -> float:
        self.model.train()
        with autocast(self.x.device, self.dtype):
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


class Inference:
    """One forward pass in eval mode under ``inference_mode``."""

    def __init__(self, model: nn.Module, x: torch.Tensor, dtype: torch.dtype):
        self.model, self.x, self.dtype = model, x, dtype

    def __call__(self) -> None:
        self.model.eval()
        with torch.inference_mode(), autocast(self.x.device, self.dtype):
            self.model(self.x)


def round_robin(fns: dict[str, Callable[[], object]], rounds: int, warmup: int,
                device: torch.device) -> dict[str, list[float]]:
    """Seconds of each call: ``warmup`` untimed rounds, then ``rounds`` timed rounds over all ``fns`` in turn."""
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + rounds):
        for name, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    if not values:
        raise ValueError('median of no measurement; run at least one round')
    return statistics.median(values)
