"""L2R composition over N LoRA adapters (issue 16): training step and inference against one adapter, and the
router's parameters.

For each N, an :class:`~petl_vision.continual.l2r.L2R` holds N LoRA adapters (the ``lora`` preset, random non-zero A
and B) and a router (:class:`~petl_vision.continual.l2r.Router`, seeded, untrained: timings do not depend on its
weights). Timed in the same interleaved rounds:

- ``train_l2r``: the router's weights from the frozen features of the batch (no gradient into the backbone there),
  the routed forward with those weights, cross-entropy, backward into the router (every adapter frozen, as L2R
  trains its routers), AdamW; ``train_live``: the same step for the per-layer routers that read the routed
  pass's own site inputs (one pass; backward into every router); ``train_single``: a training step of one LoRA
  adapter on its own model;
- ``infer_l2r``: ``l2r(x)``, the router's frozen pass and the routed pass; ``infer_live``: ``l2r(x)`` with
  per-layer routers reading their op's input in the routed pass itself (``routers='layer', inputs='live'``: one
  pass); ``infer_routed``: the routed pass alone with given weights (what composing N adapters costs);
  ``infer_single``: one adapter.

``block_calls`` counts the calls of the first block per phase: the routed pass is one backbone pass for any N.
"""
import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..continual.l2r import L2R, Router
from ..tuners import add_adapter, tuner_context
from .methods import create_backbone, example_batch
from .report import load_average, machine_info, plot_bars
from .timing import DTYPES, Inference, TrainStep, count_calls, median, round_robin

PHASES = ('train_l2r', 'train_live', 'train_single', 'infer_l2r', 'infer_live', 'infer_routed', 'infer_single')


@dataclasses.dataclass
class RoutedConfig:
    model: str = 'vit_base_patch16_224'
    adapters: tuple[int, ...] = (5, 10, 20)
    plan: str = 'lora'
    hidden: int = 64  # the router's hidden width (L2R's default)
    batch_size: int = 8
    img_size: int = 224
    num_classes: int = 10
    dtype: str = 'float32'
    device: str = 'cpu'
    rounds: int = 3
    warmup: int = 1

    def __post_init__(self):
        if not self.adapters or min(self.adapters) < 1:
            raise ValueError(f'--routed needs adapter counts >= 1, got {self.adapters}')


def _randomise_trainable(model: nn.Module) -> None:
    with torch.no_grad():  # LoRA's B starts at zero: move it so each update is real work
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.02)


def build_l2r(cfg: RoutedConfig, n: int) -> L2R:
    """An L2R with ``n`` random adapters ``t0 ..`` and a seeded router; every adapter frozen."""
    torch.manual_seed(0)
    l2r = L2R(create_backbone(cfg.model, cfg.img_size, cfg.num_classes).to(cfg.device), hidden=cfg.hidden)
    for i in range(n):
        l2r.add_task(f't{i}', cfg.plan)
    _randomise_trainable(l2r.model)
    l2r.model.requires_grad_(False)
    l2r.router = Router(l2r.model.num_features, n, cfg.hidden, l2r.temperature).to(cfg.device)
    return l2r


def build_live(cfg: RoutedConfig, n: int) -> L2R:
    """The same adapters with one seeded router per adapted op, reading its op's input in the routed pass."""
    torch.manual_seed(0)
    l2r = L2R(create_backbone(cfg.model, cfg.img_size, cfg.num_classes).to(cfg.device), hidden=cfg.hidden,
              routers='layer', inputs='live')
    for i in range(n):
        l2r.add_task(f't{i}', cfg.plan)
    _randomise_trainable(l2r.model)
    l2r.model.requires_grad_(False)
    probe = torch.zeros(1, 3, cfg.img_size, cfg.img_size, device=cfg.device)
    l2r.routers = {s: Router(f.shape[1], n, cfg.hidden, l2r.temperature).to(cfg.device)
                   for s, f in l2r.frozen_features(probe).items()}
    return l2r


def build_single(cfg: RoutedConfig) -> nn.Module:
    """The same backbone with one trainable adapter."""
    torch.manual_seed(0)
    model = create_backbone(cfg.model, cfg.img_size, cfg.num_classes)
    add_adapter(model, 't0', cfg.plan)
    _randomise_trainable(model)
    return model.to(cfg.device)


class Composed(nn.Module):
    """``l2r(x)`` with gradients into the router: frozen features without gradient, routed pass with them."""

    def __init__(self, l2r: L2R):
        super().__init__()
        self.model, self.router, self.l2r = l2r.model, l2r.router, l2r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.l2r.features(self.model, x)
        with tuner_context(adapter_weights=self.router.weights(features), adapters=list(self.l2r.adapters)):
            return self.model(x)


class GivenWeights(nn.Module):
    """The routed pass alone: ``model(x)`` with fixed weights (B, N) over ``names``."""

    def __init__(self, model: nn.Module, weights: torch.Tensor, names: list[str]):
        super().__init__()
        self.model, self.w, self.names = model, weights, names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with tuner_context(adapter_weights=self.w, adapters=self.names):
            return self.model(x)


class LiveCall(nn.Module):
    """``l2r(x)`` of live per-site routers, with the routers registered so a training step updates them."""

    def __init__(self, l2r: L2R):
        super().__init__()
        self.model, self.l2r = l2r.model, l2r
        self.routers = nn.ModuleList(l2r.routers.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2r(x)


class L2RCall(nn.Module):
    def __init__(self, l2r: L2R):
        super().__init__()
        self.model, self.l2r = l2r.model, l2r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2r(x)


def phase_fns(l2r: L2R, live: L2R, single: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype
              ) -> dict:
    weights = torch.softmax(torch.randn(len(x), len(l2r.adapters), generator=torch.Generator().manual_seed(0)), -1)
    return {'train_l2r': TrainStep(Composed(l2r), x, y, dtype), 'train_live': TrainStep(LiveCall(live), x, y, dtype),
            'train_single': TrainStep(single, x, y, dtype),
            'infer_l2r': Inference(L2RCall(l2r), x, dtype), 'infer_live': Inference(L2RCall(live), x, dtype),
            'infer_routed': Inference(GivenWeights(l2r.model, weights.to(x.device), list(l2r.adapters)), x, dtype),
            'infer_single': Inference(single, x, dtype)}


def first_block(model: nn.Module) -> nn.Module:
    """The first transformer block (timm ViT ``blocks[0]``), whose calls count backbone passes."""
    if not hasattr(model, 'blocks'):
        raise ValueError(f'--routed counts backbone passes on a timm ViT (model.blocks); {type(model).__name__} has '
                         'none')
    return model.blocks[0]


def run_routed(cfg: RoutedConfig, log: Callable[[str], None] = print) -> dict:
    """Per N: median wall and CPU seconds of every phase, ratios to one adapter, router parameters, block calls."""
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    load_before = load_average()
    x, y = example_batch(cfg.model, cfg.batch_size, cfg.img_size, cfg.num_classes, device)
    single = build_single(cfg)
    rows = []
    for n in cfg.adapters:
        log(f'L2R over {n} adapters: {cfg.warmup} warm-up + {cfg.rounds} rounds')
        l2r, live = build_l2r(cfg, n), build_live(cfg, n)
        fns = phase_fns(l2r, live, single, x, y, dtype)
        owner = {'infer_live': live.model, 'train_live': live.model}
        calls = {p: count_calls(first_block(single if p.endswith('single') else owner.get(p, l2r.model)), fn)
                 for p, fn in fns.items()}  # also the warm-up of the first round
        wall, cpu = round_robin(fns, cfg.rounds, cfg.warmup, device)
        row = {'adapters': n, 'router_params': sum(p.numel() for p in l2r.router.parameters()),
               'live_router_params': sum(p.numel() for r in live.routers.values() for p in r.parameters()),
               'block_calls': calls, **{f'{p}_s': median(wall[p]) for p in PHASES},
               **{f'{p}_cpu_s': median(cpu[p]) for p in PHASES}}
        for phase in ('train_l2r', 'train_live', 'infer_l2r', 'infer_live', 'infer_routed'):
            base = 'train_single' if phase.startswith('train') else 'infer_single'
            row[f'{phase}_ratio'] = row[f'{phase}_cpu_s'] / row[f'{base}_cpu_s']
        rows.append(row)
        del l2r, live, fns
    machine = {**machine_info(device), 'load_average_before': load_before, 'load_average_after': load_average()}
    return {'machine': machine, 'config': dataclasses.asdict(cfg), 'rows': rows}


def routed_table(report: dict) -> str:
    """Markdown: per N, CPU time of L2R's step and inference and their ratios to one adapter."""
    lines = ['| adapters | router params (model / per layer) | train step L2R (s) | train ×single | one-pass train '
             '×single | inference L2R (ms) | inference ×single | one-pass inference ×single | routed pass alone '
             '×single | backbone passes (L2R / one-pass / routed) |',
             '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|']
    for r in report['rows']:
        c = r['block_calls']
        lines.append(f'| {r["adapters"]} | {r["router_params"]:,} / {r["live_router_params"]:,} | '
                     f'{r["train_l2r_cpu_s"]:.3f} | {r["train_l2r_ratio"]:.3f} | {r["train_live_ratio"]:.3f} | '
                     f'{1e3 * r["infer_l2r_cpu_s"]:.1f} | {r["infer_l2r_ratio"]:.3f} | {r["infer_live_ratio"]:.3f} | '
                     f'{r["infer_routed_ratio"]:.3f} | {c["infer_l2r"]} / {c["infer_live"]} / {c["infer_routed"]} |')
    return '\n'.join(lines)


def routed_plot(report: dict, path: str | Path) -> Path:
    """Bars per N of L2R's step, inference and routed pass alone, CPU time ×one adapter, with the 1.3x target."""
    c = report['config']
    values = {f'N={r["adapters"]}': {'train step': r['train_l2r_ratio'], 'train step (one-pass)': r['train_live_ratio'],
                                     'inference (L2R)': r['infer_l2r_ratio'],
                                     'inference (one-pass L2R)': r['infer_live_ratio'],
                                     'routed pass alone': r['infer_routed_ratio']} for r in report['rows']}
    return plot_bars(values, path, f'L2R over N {c["plan"]} adapters, {c["model"]}, batch {c["batch_size"]}, '
                     f'{c["device"]}', 'CPU time ×one adapter', 1.3)
