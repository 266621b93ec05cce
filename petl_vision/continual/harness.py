"""One harness for every continual method: stages arrive in order, each is trained once, and after each stage every
seen stage's test set is evaluated under every method, filling one accuracy matrix per method.

Per stage ``t`` (:meth:`ContinualRun.run_stage`):

1. a new adapter ``stage.name`` (the per-task ``plan``) is trained alone on the stage's training set
   (:func:`train_stage`; older adapters get no gradient);
2. ``seq_ft``: one more adapter, shared by all stages, continues training on this stage from its state after
   the previous one (the forgetting baseline);
3. the replay memory draws this stage's examples; one frozen pass over the training set adds the stage's task
   prototype and class sums (``nearest_prototype``, ``simplecil``);
4. the L2R routers are retrained on the memory only;
5. evaluation (:func:`~petl_vision.continual.evaluate.evaluate_stage`).

Class-incremental heads: the classifier covers every class of the sequence; while stage ``t`` trains, the logits of
every class outside stage ``t`` are masked (``-inf``, as L2P's train mask), so a stage's adapter never learns to
push other stages' classes down (and, with a zeroed frozen head, its head delta stays zero on their rows).

Every stage reseeds torch from ``(seed, t)`` before it starts, and :meth:`save` / :meth:`restore` keep everything
the next stage reads (adapters, routers, memory, prototypes, matrices), so a run continued from a saved stage is the
uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.continual.baselines import SimpleCIL, TaskPrototypes
from petl_vision.continual.engine import train_stage_mmengine
from petl_vision.continual.evaluate import SEQ_ADAPTER, class_mask, evaluate_stage
from petl_vision.continual.l2r import L2R, memory_samples, pooled_features
from petl_vision.continual.memory import ReplayMemory
from petl_vision.continual.metrics import summary
from petl_vision.continual.state import restore_state, save_state

METHODS = ('oracle', 'l2r', 'arrow', 'uniform', 'seq_ft', 'nearest_prototype', 'simplecil')
ROUTED = ('l2r', 'arrow', 'nearest_prototype')  # methods that pick adapters: their routing accuracy is recorded


ENGINES = ('mmengine', 'loop')


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How each stage's adapter is trained: AdamW, cross-entropy, ``epochs`` over the stage's training set
    (``max_iters``: stop after that many steps, for quick checks), by mmengine's Runner (``engine='mmengine'``,
    :mod:`petl_vision.continual.engine`) or by the plain loop of :func:`train_stage` (``'loop'``: the same
    batches and updates, without the Runner's logging and hooks)."""

    epochs: int = 10
    lr: float = 5e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    max_iters: int | None = None
    num_workers: int = 0
    engine: str = 'mmengine'

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f'recipe.engine must be one of {ENGINES}, got {self.engine!r}')
        if self.epochs < 1 or self.batch_size < 1 or (self.max_iters is not None and self.max_iters < 1):
            raise ValueError(f'recipe.epochs, batch_size and max_iters must be >= 1; got {self}')


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: ``train`` / ``test`` datasets of ``(x, label)`` (x normalised, label of the whole classifier),
    ``classes``: the labels this stage introduces (every label under a domain sequence)."""

    name: str
    train: torch.utils.data.Dataset
    test: torch.utils.data.Dataset
    classes: tuple[int, ...]


def train_stage(model: nn.Module, adapter: str, data, recipe: Recipe, seed: int, keep: torch.Tensor | None = None,
                device: str = 'cpu', work_dir: str | Path | None = None) -> float:
    """Train ``adapter`` alone on ``data`` (logits outside ``keep`` (C,) masked) by ``recipe.engine``; returns the
    loss (the loop: the last epoch's mean; mmengine: the last iteration's). ``work_dir``: the Runner's logs (None:
    a temporary folder)."""
    pv.set_adapter(model, adapter)
    loader = torch.utils.data.DataLoader(data, batch_size=recipe.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed),
                                         num_workers=recipe.num_workers)
    if recipe.engine == 'mmengine':
        if work_dir is not None:
            return train_stage_mmengine(model, adapter, loader, recipe, seed, keep, work_dir)
        with tempfile.TemporaryDirectory() as tmp:
            return train_stage_mmengine(model, adapter, loader, recipe, seed, keep, tmp)
    params = pv.tuners.adapter_parameters(model, adapter)
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    model.train()
    steps, loss_sum, seen = 0, 0.0, 0
    for _ in range(recipe.epochs):
        loss_sum, seen = 0.0, 0
        for x, y in loader:
            logits = model(x.to(device))
            if keep is not None:
                logits = logits.masked_fill(~keep, float('-inf'))
            loss = F.cross_entropy(logits, y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum, seen, steps = loss_sum + loss.item() * len(y), seen + len(y), steps + 1
            if recipe.max_iters is not None and steps >= recipe.max_iters:
                break
        if recipe.max_iters is not None and steps >= recipe.max_iters:
            break
    model.eval()
    return loss_sum / max(seen, 1)


class ContinualRun:
    """A continual sequence on one frozen backbone with every method of :data:`METHODS` (or ``methods``).

    Args:
        model: the backbone, frozen here (its head covers every class; zero it to make each adapter's head delta
            its whole classifier).
        stages: the sequence; ``protocol``: ``'class'`` (no task id, one growing classifier) or ``'domain'``.
        plan, trainable: the per-stage adapter (``pv.add_adapter``); Arrow needs LoRA only (a LoRA on the head).
        memory: the replay memory of the L2R routers; router: L2R options (``routers``, ``mode``, ``inputs``,
            ``hidden``, ``temperature``) and its training (``epochs``, ``lr``, ``batch_size``); arrow: ``top_k``,
            ``temperature``.
    """

    def __init__(self, model: nn.Module, stages: Sequence[Stage], plan, num_classes: int, protocol: str = 'class',
                 trainable: Sequence[str] = (), methods: Sequence[str] = METHODS, recipe: Recipe = Recipe(),
                 memory: ReplayMemory | None = None, router: dict | None = None, arrow: dict | None = None,
                 seed: int = 0, device: str = 'cpu', progress: Callable[[str], None] = print,
                 work_dir: str | Path | None = None) -> None:
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f'unknown methods {unknown or "(none given)"}; choose from {METHODS}')
        if protocol not in ('class', 'domain'):
            raise ValueError(f"protocol must be 'class' or 'domain' (no task id at test time), got {protocol!r}")
        if len({s.name for s in stages}) != len(stages) or SEQ_ADAPTER in {s.name for s in stages}:
            raise ValueError(f'stage names must be distinct and not {SEQ_ADAPTER!r}: {[s.name for s in stages]}')
        self.model = model.requires_grad_(False).eval().to(device)
        self.stages, self.plan, self.trainable = list(stages), plan, tuple(trainable)
        self.num_classes, self.protocol, self.methods = num_classes, protocol, tuple(methods)
        self.recipe, self.seed, self.device, self.progress = recipe, seed, device, progress
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.memory = memory if memory is not None else ReplayMemory(per_task=20, seed=seed)
        router = dict(router or {})
        self.router_fit = {k: router.pop(k) for k in ('epochs', 'lr', 'batch_size') if k in router}
        self.l2r = L2R(self.model, **router)
        self.arrow = dict(arrow or {})
        self.prototypes, self.simplecil = TaskPrototypes(), None
        T = len(self.stages)
        self.R = {m: np.full((T, T), np.nan) for m in self.methods}
        self.routing: dict[str, list[float]] = {m: [] for m in ROUTED if m in self.methods}
        self.losses: dict[str, list[float]] = {'adapter': [], SEQ_ADAPTER: []}
        self.seconds: list[float] = []
        self.completed = 0

    def _logs(self, adapter: str, t: int) -> Path | None:
        """Where the Runner of stage ``t``'s ``adapter`` logs (None: a temporary folder)."""
        return None if self.work_dir is None else self.work_dir / 'stages' / f'{t}_{adapter}'

    def stage_seed(self, t: int) -> int:
        return int(np.random.default_rng((self.seed, t)).integers(2**31))

    def keep(self, t: int) -> torch.Tensor | None:
        """The classes stage ``t`` trains (class-incremental); None: every class (domain)."""
        if self.protocol == 'domain':
            return None
        return class_mask(self.stages[t].classes, self.num_classes, self.device)

    def run_stage(self, t: int) -> None:
        if t != self.completed:
            raise ValueError(f'stages run in order: {self.completed} done, so the next is {self.completed}, got {t}')
        start, stage, seed = time.perf_counter(), self.stages[t], self.stage_seed(t)
        torch.manual_seed(seed)
        self.l2r.add_task(stage.name, self.plan, self.trainable)
        self.losses['adapter'].append(train_stage(self.model, stage.name, stage.train, self.recipe, seed,
                                                  self.keep(t), self.device, self._logs(stage.name, t)))
        if SEQ_ADAPTER in self.methods:
            if t == 0:
                pv.add_adapter(self.model, SEQ_ADAPTER, self.plan, trainable=self.trainable)
            self.losses[SEQ_ADAPTER].append(train_stage(self.model, SEQ_ADAPTER, stage.train, self.recipe, seed,
                                                        self.keep(t), self.device, self._logs(SEQ_ADAPTER, t)))
        self.memory.add_task(t, range(len(stage.train)))
        self._add_prototypes(stage)
        if 'l2r' in self.methods:
            x_mem, t_mem = memory_samples(self.memory, [s.train for s in self.stages[:t + 1]])
            self.l2r.fit_router(x_mem.to(self.device), t_mem.to(self.device), seed=seed, **self.router_fit)
        acc, routed = evaluate_stage(self, t)
        for m in self.methods:
            self.R[m][t, :t + 1] = acc[m]
        for m in self.routing:
            self.routing[m].append(routed[m])
        self.completed = t + 1
        self.seconds.append(time.perf_counter() - start)
        self.progress(f'stage {t + 1}/{len(self.stages)} {stage.name}: loss {self.losses["adapter"][-1]:.3f}; ' +
                      ', '.join(f'{m} {np.mean(acc[m]):.3f}' for m in self.methods) + f' ({self.seconds[-1]:.1f} s)')

    @torch.no_grad()
    def _add_prototypes(self, stage: Stage) -> None:
        if not {'nearest_prototype', 'simplecil'} & set(self.methods):
            return
        self.prototypes.start_task()
        for x, y in self.loader(stage.train):
            f = pooled_features(self.model, x.to(self.device))
            if self.simplecil is None:
                self.simplecil = SimpleCIL(self.num_classes, f.shape[1])
            self.prototypes.add(f)
            self.simplecil.add(f, y)

    def loader(self, data):
        return torch.utils.data.DataLoader(data, batch_size=max(self.recipe.batch_size, 64), shuffle=False,
                                           num_workers=self.recipe.num_workers)

    def run(self, stop_after: int | None = None, save_to: str | Path | None = None) -> dict:
        """Run the remaining stages (``stop_after``: only up to that many in total), saving after each one."""
        end = len(self.stages) if stop_after is None else min(stop_after, len(self.stages))
        for t in range(self.completed, end):
            self.run_stage(t)
            if save_to is not None:
                self.save(save_to)
        return self.result()

    def result(self) -> dict:
        """Matrices (NaN above the diagonal and below the last completed stage), metrics of a finished run,
        routing accuracy per stage, losses and timings."""
        sizes = [len(s.test) for s in self.stages]
        done = self.completed
        metrics = {m: summary(self.R[m][:done, :done], sizes[:done]) for m in self.methods} if done else {}
        return {'stages': [s.name for s in self.stages], 'protocol': self.protocol, 'completed': done,
                'test_sizes': sizes, 'matrices': {m: self.R[m].tolist() for m in self.methods}, 'metrics': metrics,
                'routing_accuracy': self.routing, 'final_train_loss': self.losses, 'seconds': self.seconds}

    def save(self, folder: str | Path) -> Path:
        """Write the state after the completed stages into ``folder`` (see :mod:`petl_vision.continual.state`)."""
        return save_state(self, folder)

    def restore(self, folder: str | Path) -> None:
        """Continue after the stages a :meth:`save` recorded, on a fresh run built from the same config."""
        restore_state(self, folder)
