"""PHA's multi-task training step (issue 17) against per-task adapters, and the cost of its two retriever feature
sources.

On one mixed-task batch (sample i belongs to task ``i mod tasks``), in the same interleaved rounds:

- ``pha_prepass``: :class:`~petl_vision.models.pha_classifier.PHAClassifier` (rank-``rank`` PHA on every block's
  mlp, the retriever, both contrastive losses) with ``retriever_features='prepass'`` (a frozen second forward);
- ``pha_prepass_early``: the same pre-pass stopped after block ``block`` (``prepass_block``: about
  ``(block + 1) / depth`` of a frozen forward; PHA stays on every block);
- ``pha_block``: the same with ``retriever_features=block`` (that block's output tokens, in the same pass);
- ``per_task``: :class:`~petl_vision.models.multitask_classifier.MultiTaskClassifier` with a bottleneck adapter
  per task of the same shape (AdaptFormer, dim ``rank``, scale 1, parallel to every block's mlp on its normed
  input, as PHA's), each sample routed to its task's adapter.

Each phase is a training step (``mode='loss'``, the sum of the loss terms, backward, AdamW over the trainable
tensors) and an inference pass (``mode='tensor'``). Random weights: timings do not depend on them.
"""
import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..models.multitask_classifier import MultiTaskClassifier
from ..models.pha_classifier import PHAClassifier
from .report import load_average, machine_info, plot_bars
from .timing import DTYPES, Inference, TrainStep, count_calls, median, round_robin

VARIANTS = ('pha_prepass', 'pha_prepass_early', 'pha_block', 'per_task')


@dataclasses.dataclass
class PHABenchConfig:
    model: str = 'vit_base_patch16_224'
    tasks: int = 4
    rank: int = 64  # PHA's bottleneck r (the paper's 64) and the per-task adapters' dim
    block: int = 3  # retriever features of this block for ``pha_block``
    batch_size: int = 8
    img_size: int = 224
    num_classes: int = 10  # per task
    dtype: str = 'float32'
    device: str = 'cpu'
    rounds: int = 3
    warmup: int = 1

    def __post_init__(self):
        if self.tasks < 2:
            raise ValueError(f'--pha-tasks must be >= 2 (the official prototype loss needs two tasks), got '
                             f'{self.tasks}')


def task_names(cfg: PHABenchConfig) -> list[str]:
    return [f'task{i}' for i in range(cfg.tasks)]


def build_variant(cfg: PHABenchConfig, variant: str) -> nn.Module:
    """The model of ``variant`` (one of :data:`VARIANTS`) on a randomly initialised backbone."""
    torch.manual_seed(0)
    backbone = dict(model=cfg.model, pretrained=None, img_size=cfg.img_size)
    tasks = {t: cfg.num_classes for t in task_names(cfg)}
    if variant == 'per_task':
        plan = [{'type': 'AdaptFormer', 'dim': cfg.rank, 'scale': 1.0}]
        return MultiTaskClassifier(backbone, tasks, plan=plan, adapters='per_task')
    if variant not in VARIANTS:
        raise ValueError(f'unknown PHA benchmark variant {variant!r}; one of {VARIANTS}')
    source = cfg.block if variant == 'pha_block' else 'prepass'
    early = cfg.block if variant == 'pha_prepass_early' else None
    return PHAClassifier(backbone, tasks, plan=[{'type': 'PHA', 'rank': cfg.rank}], retriever_features=source,
                         prepass_block=early)


class Predict(nn.Module):
    """``model(x, mode='tensor', task=tasks)`` (inference: per-task logits)."""

    def __init__(self, model: nn.Module, tasks: list[str]):
        super().__init__()
        self.model, self.tasks = model, tasks

    def forward(self, x: torch.Tensor) -> dict:
        return self.model(x, mode='tensor', task=self.tasks)


def multitask_loss(tasks: list[str]) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of a multi-task model: every term of ``mode='loss'`` whose key holds 'loss' (as mmengine
    sums them), on the batch's tasks."""
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        terms = model(x, y, mode='loss', task=tasks)
        return sum(v for k, v in terms.items() if 'loss' in k)
    return loss


def parameter_counts(model: nn.Module) -> dict:
    counts = model.parameter_counts()
    return {k: counts[k] for k in ('trainable', 'hypernetwork', 'prototypes', 'retriever') if k in counts}


def run_pha(cfg: PHABenchConfig, log: Callable[[str], None] = print) -> dict:
    """Per variant: median wall and CPU seconds of the training step and inference, ratios to ``per_task``,
    trainable parameters and backbone passes (calls of the first block) per step."""
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    load_before = load_average()
    names = task_names(cfg)
    tasks = [names[i % cfg.tasks] for i in range(cfg.batch_size)]
    x = torch.randn(cfg.batch_size, 3, cfg.img_size, cfg.img_size, device=device)
    y = torch.randint(0, cfg.num_classes, (cfg.batch_size,), device=device)
    models = {v: build_variant(cfg, v).to(device) for v in VARIANTS}
    fns = {}
    for v, m in models.items():
        fns[f'train_{v}'] = TrainStep(m, x, y, dtype, loss_fn=multitask_loss(tasks))
        fns[f'infer_{v}'] = Inference(Predict(m, tasks), x, dtype)
    calls = {name: count_calls(models[name.split('_', 1)[1]].backbone.blocks[0], fn) for name, fn in fns.items()}
    log(f'PHA vs per-task adapters: {cfg.warmup} warm-up + {cfg.rounds} rounds')
    wall, cpu = round_robin(fns, cfg.rounds, cfg.warmup, device)
    rows = {}
    for v, m in models.items():
        row = {**parameter_counts(m), 'block_calls_train': calls[f'train_{v}'],
               'block_calls_infer': calls[f'infer_{v}']}
        for phase in ('train', 'infer'):
            row[f'{phase}_s'], row[f'{phase}_cpu_s'] = median(wall[f'{phase}_{v}']), median(cpu[f'{phase}_{v}'])
        rows[v] = row
    for row in rows.values():
        for phase in ('train', 'infer'):
            row[f'{phase}_ratio'] = row[f'{phase}_cpu_s'] / rows['per_task'][f'{phase}_cpu_s']
    machine = {**machine_info(device), 'load_average_before': load_before, 'load_average_after': load_average()}
    return {'machine': machine, 'config': dataclasses.asdict(cfg), 'rows': rows}


def pha_table(report: dict) -> str:
    """Markdown: per variant, trainable parameters, CPU time of the step and inference, ratios to per-task."""
    block = report['config']['block']
    label = {'pha_prepass': 'PHA, retriever on a frozen pre-pass',
             'pha_prepass_early': f'PHA, retriever on a frozen pre-pass stopped after block {block}',
             'pha_block': f'PHA, retriever on block {block}',
             'per_task': 'per-task adapters (AdaptFormer)'}
    lines = ['| method | trainable | train step (s) | step ×per-task | inference (ms) | inference ×per-task | '
             'backbone passes (step / inference) |', '|---|---:|---:|---:|---:|---:|---|']
    for v, r in report['rows'].items():
        lines.append(f'| {label[v]} | {r["trainable"]:,} | {r["train_cpu_s"]:.3f} | {r["train_ratio"]:.3f} | '
                     f'{1e3 * r["infer_cpu_s"]:.1f} | {r["infer_ratio"]:.3f} | {r["block_calls_train"]} / '
                     f'{r["block_calls_infer"]} |')
    return '\n'.join(lines)


def pha_plot(report: dict, path: str | Path) -> Path:
    """Bars of each variant's step and inference CPU time ×per-task adapters, with the 1.3x target."""
    c = report['config']
    values = {v: {'train step': r['train_ratio'], 'inference': r['infer_ratio']} for v, r in report['rows'].items()}
    return plot_bars(values, path, f'PHA vs per-task adapters, {c["tasks"]} tasks, {c["model"]}, batch '
                     f'{c["batch_size"]}, {c["device"]}', 'CPU time ×per-task adapters', 1.3)
