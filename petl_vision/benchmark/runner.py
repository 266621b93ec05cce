"""One benchmark run: build every method on the same timm model, then time, count and measure them."""
import dataclasses

import torch
from torch import nn

from ..tuners import count_parameters
from .flops import count_flops
from .memory import measure_step_memory, saved_for_backward_mb
from .methods import (FULL, PEFT_LORA, build_method, check_methods, example_batch, merged_copy, peft_available,
                      set_grad_checkpointing)
from .report import add_ratios, load_average, machine_info
from .timing import DTYPE_ALIASES, DTYPES, Inference, TrainStep, median, round_robin


@dataclasses.dataclass
class BenchConfig:
    model: str = 'vit_small_patch16_224'
    presets: list[str] = dataclasses.field(default_factory=lambda: ['lora', 'adapter', 'vpt_deep', 'bypass'])
    batch_size: int = 8
    img_size: int = 224
    num_classes: int = 100
    dtype: str = 'float32'
    device: str = 'cpu'
    rounds: int = 5
    warmup: int = 1
    peft: bool = True  # add HF PEFT's LoRA when peft is installed
    threads: int | None = None  # torch CPU threads; None: torch's default (one per core)
    grad_checkpointing: bool = False  # timm's checkpointing of the frozen block stack, where it is correct

    def __post_init__(self):
        self.dtype = DTYPE_ALIASES.get(self.dtype, self.dtype)
        if self.dtype not in DTYPES:
            raise ValueError(f'dtype {self.dtype!r} is not one of {", ".join(DTYPES)}')
        if self.device == 'cuda' and not torch.cuda.is_available():
            raise ValueError('--device cuda, but torch sees no CUDA device; use --device cpu')

    def methods(self) -> list[str]:
        """full first (the reference), the presets, then PEFT LoRA when requested and installed."""
        extra = [PEFT_LORA] if self.peft and peft_available() and PEFT_LORA not in self.presets else []
        names = [FULL, *(p for p in self.presets if p != FULL), *extra]
        check_methods(names)
        return names


def _inference_fns(models: dict[str, nn.Module], x: torch.Tensor, dtype: torch.dtype) -> tuple[dict, dict, dict]:
    """Unmerged and merged inference calls, and the merged copies themselves (None where not mergeable)."""
    unmerged = {f'{n}:unmerged': Inference(m, x, dtype) for n, m in models.items()}
    copies = {n: merged_copy(n, m) for n, m in models.items()}
    merged = {f'{n}:merged': Inference(m, x, dtype) for n, m in copies.items() if m is not None}
    return unmerged, merged, copies


def run_benchmark(cfg: BenchConfig, log=print) -> dict:
    """The full record (machine, config, per-method figures and ratios); see ``tools/benchmark.py``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or threads)
    try:
        return _run(cfg, log)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: BenchConfig, log) -> dict:
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    names = cfg.methods()
    load_before = load_average()
    models = {n: build_method(n, cfg.model, cfg.img_size, cfg.num_classes).to(device) for n in names}
    x, y = example_batch(cfg.model, cfg.batch_size, cfg.img_size, cfg.num_classes, device)
    log(f'methods: {", ".join(names)}; counting FLOPs')
    one = x[:1]
    rows = {n: {'trainable_params': count_parameters(m)['trainable'], 'total_params': count_parameters(m)['total'],
                'gflops': count_flops(m.eval(), one) / 1e9} for n, m in models.items()}
    # checkpointing is a training feature: on for the training steps only (not for FLOPs and inference)
    checkpointing = {n: set_grad_checkpointing(m) if cfg.grad_checkpointing else 'off' for n, m in models.items()}
    for n, m in models.items():
        rows[n]['saved_for_backward_mb'] = saved_for_backward_mb(m, x, y, dtype)
    log(f'timing training steps: {cfg.warmup} warm-up + {cfg.rounds} rounds')
    train, train_cpu = round_robin({n: TrainStep(m, x, y, dtype) for n, m in models.items()}, cfg.rounds,
                                   cfg.warmup, device)
    for n, m in models.items():
        if checkpointing[n] == 'on':
            m.set_grad_checkpointing(False)
    log('timing inference (unmerged and merged)')
    unmerged, merged, copies = _inference_fns(models, x, dtype)
    for n, m in copies.items():  # a merged model should cost exactly the backbone's FLOPs
        rows[n]['gflops_merged'] = None if m is None else count_flops(m.eval(), one) / 1e9
    infer, infer_cpu = round_robin({**unmerged, **merged}, cfg.rounds, cfg.warmup, device)
    del models, unmerged, merged, copies
    memory = {}
    for n in names:
        log(f'peak memory of a training step: {n} (fresh process)')
        memory[n] = measure_step_memory(n, cfg.model, cfg.batch_size, cfg.img_size, cfg.num_classes, cfg.dtype,
                                        cfg.device, cfg.threads, cfg.grad_checkpointing)
    for n, row in rows.items():
        merged, merged_cpu = infer.get(f'{n}:merged'), infer_cpu.get(f'{n}:merged')
        row.update(grad_checkpointing=checkpointing[n], peak_memory_mb=memory[n]['peak_mb'],
                   step_time_s=median(train[n]), step_times_s=train[n],
                   step_cpu_s=median(train_cpu[n]), step_cpu_times_s=train_cpu[n],
                   infer_unmerged_s=median(infer[f'{n}:unmerged']), infer_unmerged_times_s=infer[f'{n}:unmerged'],
                   infer_unmerged_cpu_s=median(infer_cpu[f'{n}:unmerged']), mergeable=merged is not None,
                   infer_merged_s=median(merged) if merged else None, infer_merged_times_s=merged,
                   infer_merged_cpu_s=median(merged_cpu) if merged_cpu else None)
    peft = PEFT_LORA if PEFT_LORA in rows else None
    add_ratios(rows, FULL, peft)
    machine = {**machine_info(device), 'load_average_before': load_before, 'load_average_after': load_average()}
    return {'machine': machine, 'config': dataclasses.asdict(cfg),
            'memory_method': memory[FULL]['how'], 'baselines': {'full': FULL, 'peft': peft}, 'methods': rows}
