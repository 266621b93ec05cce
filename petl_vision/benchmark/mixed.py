"""Mixed-task batches: a batch spread over N named adapters on one backbone, against the same batch through one
adapter, and against HF PEFT's ``adapter_names`` mixed-batch inference (LoRA only, inference only in PEFT).

For each method and N, one model holds N adapters ``t0 .. t{N-1}``; the *mixed* batch routes sample i to
``t{i % N}`` (``tuner_context(adapter=[...])``), the *single* batch routes every sample to ``t0``. Both are timed in
the same interleaved rounds (``timing.round_robin``), training step and inference; the ratio mixed / single is what
routing costs.
"""
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from ..tuners import add_adapter, tuner_context
from .methods import create_backbone, example_batch, peft_available
from .timing import DTYPES, Inference, TrainStep, median, round_robin


class Routed(nn.Module):
    """``model(x)`` with each sample routed to its adapter."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with tuner_context(adapter=self.names):
            return self.model(x)


class PeftMixed(nn.Module):
    """PEFT's mixed-batch inference: ``peft_model(x, adapter_names=[...])``."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, adapter_names=self.names)


@dataclasses.dataclass
class MixedConfig:
    model: str = 'vit_small_patch16_224'
    methods: tuple[str, ...] = ('lora', 'adapter', 'vpt_deep')
    adapters: tuple[int, ...] = (1, 4, 16)
    batch_size: int = 16
    img_size: int = 224
    num_classes: int = 10
    dtype: str = 'float32'
    device: str = 'cpu'
    rounds: int = 3
    warmup: int = 1
    peft: bool = True


def build_adapters(cfg: MixedConfig, method: str, n: int) -> nn.Module:
    torch.manual_seed(0)
    model = create_backbone(cfg.model, cfg.img_size, cfg.num_classes)
    for i in range(n):
        add_adapter(model, f't{i}', method)
    with torch.no_grad():  # LoRA's B starts at zero: move it so the update is real work
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.02)
    return model.to(cfg.device)


def build_peft(cfg: MixedConfig, n: int) -> nn.Module:
    import peft

    torch.manual_seed(0)
    model = create_backbone(cfg.model, cfg.img_size, cfg.num_classes)
    config = peft.LoraConfig(r=8, lora_alpha=8, target_modules=['qkv'])
    model = peft.get_peft_model(model, config, adapter_name='t0')
    for i in range(1, n):
        model.add_adapter(f't{i}', peft.LoraConfig(r=8, lora_alpha=8, target_modules=['qkv']))
    return model.to(cfg.device)


def run_mixed(cfg: MixedConfig, log: Callable[[str], None] = print) -> dict:
    """Per method and N: median wall and CPU seconds of the mixed and single-adapter training step and inference,
    their ratios, and PEFT's mixed inference for LoRA."""
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    x, y = example_batch(cfg.model, cfg.batch_size, cfg.img_size, cfg.num_classes, device)
    results = []
    for method in cfg.methods:
        for n in cfg.adapters:
            log(f'{method}: {n} adapters')
            model = build_adapters(cfg, method, n)
            mixed = [f't{i % n}' for i in range(cfg.batch_size)]
            fns = {'train_mixed': TrainStep(Routed(model, mixed), x, y, dtype),
                   'train_single': TrainStep(Routed(model, ['t0'] * cfg.batch_size), x, y, dtype),
                   'infer_mixed': Inference(Routed(model, mixed), x, dtype),
                   'infer_single': Inference(Routed(model, ['t0'] * cfg.batch_size), x, dtype)}
            if method == 'lora' and cfg.peft and peft_available():
                fns['infer_peft_mixed'] = Inference(PeftMixed(build_peft(cfg, n), mixed), x, dtype)
            wall, cpu = round_robin(fns, cfg.rounds, cfg.warmup, device)
            row = {'method': method, 'adapters': n, **{f'{k}_s': median(v) for k, v in wall.items()},
                   **{f'{k}_cpu_s': median(v) for k, v in cpu.items()}}
            for phase in ('train', 'infer'):
                row[f'{phase}_ratio'] = row[f'{phase}_mixed_cpu_s'] / row[f'{phase}_single_cpu_s']
            if 'infer_peft_mixed_cpu_s' in row:
                row['peft_over_ours'] = row['infer_peft_mixed_cpu_s'] / row['infer_mixed_cpu_s']
            results.append(row)
    return {'config': dataclasses.asdict(cfg), 'rows': results}


def mixed_table(report: dict) -> str:
    """Markdown: CPU-time ratios mixed / single per method and N, and PEFT's mixed inference against ours."""
    lines = ['| method | adapters | train step mixed (s) | train ×single | inference mixed (ms) | inference ×single | '
             'PEFT mixed inference ×ours |', '|---|---:|---:|---:|---:|---:|---:|']
    for r in report['rows']:
        peft = f'{r["peft_over_ours"]:.2f}' if 'peft_over_ours' in r else 'n/a'
        lines.append(f'| {r["method"]} | {r["adapters"]} | {r["train_mixed_cpu_s"]:.3f} | {r["train_ratio"]:.3f} | '
                     f'{1000 * r["infer_mixed_cpu_s"]:.1f} | {r["infer_ratio"]:.3f} | {peft} |')
    return '\n'.join(lines)
