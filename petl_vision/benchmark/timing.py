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
DTYPE_ALIASES = {'fp32': 'float32', 'bf16': 'bfloat16', 'fp16': 'float16'}
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # (model, x, y) -> scalar loss


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    """Mixed precision for non-float32 dtypes (weights and optimizer stay float32)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


class TrainStep:
    """One training step: forward, loss (``loss_fn(model, x, y)``, default cross-entropy of ``model(x)``), backward,
    AdamW over the trainable parameters only.

    float16 autocast adds a ``GradScaler`` (its unscale and inf check are part of a real fp16 step); bfloat16
    needs none.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype, lr: float = 1e-5,
                 loss_fn: LossFn | None = None):
        self.model, self.x, self.y, self.dtype = model, x, y, dtype
        self.loss_fn = loss_fn or cross_entropy
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError('the model has no trainable parameter; a training step would do nothing')
        self.optimizer = torch.optim.AdamW(self.params, lr=lr)
        self.scaler = torch.amp.GradScaler(x.device.type, enabled=dtype == torch.float16)

    def __call__(self) -> float:
        self.model.train()
        with autocast(self.x.device, self.dtype):
            loss = self.loss_fn(self.model, self.x, self.y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
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
                device: torch.device) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and process CPU seconds of each call: ``warmup`` untimed rounds, then ``rounds`` timed rounds
    over all ``fns`` in turn.

    CPU time (all threads of this process) barely moves when other jobs share the cores, so on a busy machine it
    is the steadier figure; with one torch thread it is the work the step needs. Wall time is what a user waits.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + rounds):
        for name, fn in fns.items():
            synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            synchronize(device)
            if i >= warmup:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def count_calls(module: nn.Module, fn: Callable[[], object]) -> int:
    """How many times ``module`` runs its forward during ``fn()`` (e.g. a block: how many backbone passes)."""
    calls = []
    handle = module.register_forward_hook(lambda *_: calls.append(1))
    try:
        fn()
    finally:
        handle.remove()
    return len(calls)


def paired_ratio(values: list[float], references: list[float]) -> float:
    """Median over rounds of ``values[i] / references[i]``: both ran in the same round, so a slow spell of the
    machine that hits one round divides out (steadier than the ratio of the two medians on a busy machine)."""
    if len(values) != len(references):
        raise ValueError(f'{len(values)} values for {len(references)} references; pair samples of the same rounds')
    return median([v / r for v, r in zip(values, references)])


def median(values: list[float]) -> float:
    if not values:
        raise ValueError('median of no measurement; run at least one round')
    return statistics.median(values)
