"""A merged weight-space combination of N LoRA adapters (issue 15): inference against one unmerged adapter and the
frozen backbone, and the time ``combine_adapters`` takes to build the combination.

One model holds N LoRA adapters ``t0 .. t{N-1}`` (rank 8 on the whole fused qkv, random non-zero A and B);
``pv.combine_adapters(model, names, None, 'combined', method='ties', density=0.2)`` adds their TIES combination (a
DenseDelta per op: the exact combined ``dW``), which is timed once. Then, in the same interleaved rounds:

- ``frozen``: the plain timm model with the same weights (no tuner wrappers at all);
- ``single``: the model with one LoRA adapter active, unmerged (what serving one adapter costs without merging);
- ``combined``: the combination active, unmerged (a dense (3C, C) update per qkv);
- ``merged``: a copy with the combination folded into the weights by ``pv.merge_tuners``.

The target is ``merged`` within 2% of ``frozen``; ``merged_max_abs_diff`` checks that the merged copy computes
what the unmerged combination does.
"""
import copy
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..composition import combine_adapters
from ..composition.merging import METHODS
from ..tuners import add_adapter, merge_tuners, set_adapter, tuner_context
from .methods import create_backbone, example_batch
from .report import load_average, machine_info, plot_bars
from .timing import DTYPES, Inference, median, paired_ratio, round_robin

COMBINED = 'combined'
PHASES = ('frozen', 'single', 'combined', 'merged')
MERGE_METHODS = tuple(m for m in METHODS if m != 'svd')


@dataclasses.dataclass
class MergedConfig:
    model: str = 'vit_base_patch16_224'
    adapters: int = 20  # LoRA adapters combined
    rank: int = 8
    method: str = 'ties'  # combine_adapters method
    density: float | None = 0.2  # for the pruning methods (TIES' top 20%); None for linear / task_arithmetic
    batch_size: int = 8
    img_size: int = 224
    num_classes: int = 10
    dtype: str = 'float32'
    device: str = 'cpu'
    rounds: int = 3
    warmup: int = 1

    def __post_init__(self):
        if self.adapters < 1:
            raise ValueError(f'--merged-adapters must be >= 1, got {self.adapters}')
        if self.method not in METHODS or self.method == 'svd':
            raise ValueError(f'--merged-method {self.method!r}: time one of {MERGE_METHODS} (svd re-compresses to a '
                             'rank and is not a merge of the exact combination)')


def lora_plan(rank: int) -> list[dict]:
    """LoRA of rank ``rank`` on every block's whole fused qkv (q, k and v)."""
    return [{'type': 'LoRA', 'rank': rank}]


def build_models(cfg: MergedConfig) -> tuple[nn.Module, nn.Module, list[str]]:
    """(frozen timm model, the same model with ``cfg.adapters`` random LoRA adapters, their names)."""
    torch.manual_seed(0)
    frozen = create_backbone(cfg.model, cfg.img_size, cfg.num_classes).eval()
    model = copy.deepcopy(frozen)
    names = [f't{i}' for i in range(cfg.adapters)]
    for name in names:
        add_adapter(model, name, lora_plan(cfg.rank))
    with torch.no_grad():  # LoRA's B starts at zero: random A and B so the adapters differ and the update is real
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.02)
    return frozen, model, names


def time_combine(model: nn.Module, names: list[str], cfg: MergedConfig) -> dict:
    """Wall and CPU seconds of one ``combine_adapters`` call adding :data:`COMBINED`, and its report."""
    start, start_cpu = time.perf_counter(), time.process_time()
    report = combine_adapters(model, names, None, COMBINED, method=cfg.method, density=cfg.density)
    return {'combine_s': time.perf_counter() - start, 'combine_cpu_s': time.process_time() - start_cpu,
            'density': report.density}


class Active(nn.Module):
    """``model(x)`` with adapter ``name`` acting on every sample (``tuner_context(adapter=name)``)."""

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with tuner_context(adapter=self.name):
            return self.model(x)


def phase_models(frozen: nn.Module, model: nn.Module) -> dict[str, nn.Module]:
    """One module per phase of :data:`PHASES`; the merged phase is a copy of ``model`` with the combination merged."""
    set_adapter(model, COMBINED)
    merged = merge_tuners(copy.deepcopy(model))
    return {'frozen': frozen, 'single': Active(model, 't0'), 'combined': Active(model, COMBINED), 'merged': merged}


def run_merged(cfg: MergedConfig, log: Callable[[str], None] = print) -> dict:
    """Combine time, the four phases' median inference (wall and CPU), ratios to frozen and to single."""
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    load_before = load_average()
    frozen, model, names = build_models(cfg)
    log(f'combining {cfg.adapters} LoRA adapters ({cfg.method})')
    combine = time_combine(model, names, cfg)
    frozen, model = frozen.to(device), model.to(device)
    phases = phase_models(frozen, model)
    x, _ = example_batch(cfg.model, cfg.batch_size, cfg.img_size, cfg.num_classes, device)
    with torch.inference_mode():
        diff = (phases['merged'](x) - phases['combined'](x)).abs().max().item()
    log(f'timing inference: {cfg.warmup} warm-up + {cfg.rounds} rounds')
    fns = {p: Inference(m, x, dtype) for p, m in phases.items()}
    wall, cpu = round_robin(fns, cfg.rounds, cfg.warmup, device)
    row = {**combine, 'merged_max_abs_diff': diff, **{f'{p}_s': median(wall[p]) for p in PHASES},
           **{f'{p}_cpu_s': median(cpu[p]) for p in PHASES}, 'samples_cpu_s': cpu}
    for p in PHASES:
        row[f'{p}_vs_frozen'] = row[f'{p}_cpu_s'] / row['frozen_cpu_s']
        row[f'{p}_vs_frozen_wall'] = row[f'{p}_s'] / row['frozen_s']
        row[f'{p}_vs_frozen_paired'] = paired_ratio(cpu[p], cpu['frozen'])
    machine = {**machine_info(device), 'load_average_before': load_before, 'load_average_after': load_average()}
    return {'machine': machine, 'config': dataclasses.asdict(cfg), 'row': row}


def merged_table(report: dict) -> str:
    """Markdown: combine time, then per phase the inference CPU time and its ratio to the frozen backbone (of the
    medians, and the median of the per-round ratios)."""
    r, c = report['row'], report['config']
    lines = [f'combine_adapters({c["adapters"]} LoRA r{c["rank"]}, method={c["method"]!r}, density={c["density"]}): '
             f'{r["combine_s"]:.2f} s wall, {r["combine_cpu_s"]:.2f} s CPU; merged vs unmerged combination: max '
             f'|diff| {r["merged_max_abs_diff"]:.1e}', '',
             '| inference | CPU ms | ×frozen (CPU) | ×frozen (CPU, paired) | wall ms | ×frozen (wall) |',
             '|---|---:|---:|---:|---:|---:|']
    for p in PHASES:
        lines.append(f'| {p} | {1e3 * r[f"{p}_cpu_s"]:.1f} | {r[f"{p}_vs_frozen"]:.3f} | '
                     f'{r[f"{p}_vs_frozen_paired"]:.3f} | {1e3 * r[f"{p}_s"]:.1f} | {r[f"{p}_vs_frozen_wall"]:.3f} |')
    return '\n'.join(lines)


def merged_plot(report: dict, path: str | Path) -> Path:
    """Bars per phase of inference ×the frozen backbone, with the 1.02x target."""
    r, c = report['row'], report['config']
    values = {p: {'CPU ×frozen': r[f'{p}_vs_frozen'], 'CPU ×frozen (paired)': r[f'{p}_vs_frozen_paired'],
                  'wall ×frozen': r[f'{p}_vs_frozen_wall']} for p in PHASES}
    return plot_bars(values, path, f'merged {c["method"]} of {c["adapters"]} LoRA, {c["model"]}, batch '
                     f'{c["batch_size"]}, {c["device"]}', 'inference ×frozen backbone', 1.02)
