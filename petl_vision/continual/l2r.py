"""L2R (Araujo, Moens & Tuytelaars, Findings of EMNLP 2024, arXiv 2408.09053): learning to route between
per-task adapters in continual learning.

Each task's adapter is trained in isolation (:meth:`L2R.add_task` adds it with ``pv.add_adapter`` and makes it the
only active one, so older adapters get no update and no interference). Before inference a router is trained on
the replay memory to give each sample weights over the adapters seen so far, and the adapters are composed by the
core's soft routing, one backbone pass for all of them::

    with pv.tuner_context(adapter_weights=W, adapters=names):   # W (B, N), each row a softmax
        logits = model(x)

A router (:class:`Router`) is a small MLP retrained from scratch after each task on the memory only, with the task
id of each memory sample as its target (cross-entropy), every adapter frozen. ``routers`` chooses where routers sit:

- ``'model'``: one router on the frozen backbone's pooled features (every adapter off:
  ``pv.tuner_context(adapter=None)``), the same weights at every adapted op;
- ``'block'`` / ``'layer'``: one router per block / per adapted op, on that site's pooled input in the frozen model
  (:mod:`petl_vision.continual.sites`), as the paper routes per layer. Each site's ops mix the adapters by that
  site's weights.

Either way inference is one frozen pass (features / site inputs) and one routed pass, unless per-site routers
read ``inputs='live'``: each router then reads its site's input in the routed pass itself (one pass in all). Live
routers are fitted site by site in model order, each on its site's inputs in the pass routed live by the routers
already fitted before it: the inputs it reads at inference. ``mode`` is how the
weighted adapters are composed: ``'output'`` (the core's soft routing: ``O(x) + sum_a w_a U_a(x)``) or ``'merge'``
(per sample, the weighted sum of the adapters' task vectors applied as the layer's weights:
:mod:`petl_vision.continual.merge`; for LoRA the two agree).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.continual.memory import ReplayMemory
from petl_vision.continual.merge import MergedWeights
from petl_vision.continual.sites import (GRANULARITIES, LiveSiteRouting, SiteWeights, block_of, live_site_input,
                                         routing_sites, site_inputs)

Features = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's pooled pre-logits features (B, C) (timm's ``forward_head(..., pre_logits=True)``, else the
    model's output), every adapter off."""
    with pv.tuner_context(adapter=None):
        if hasattr(model, 'forward_features') and hasattr(model, 'forward_head'):
            return model.forward_head(model.forward_features(x), pre_logits=True)
        return model(x)


class Router(nn.Module):
    """Features (B, C) -> weights (B, N) over ``num_adapters`` adapters: ``softmax(MLP(LayerNorm(f)) / T)``."""

    def __init__(self, in_features: int, num_adapters: int, hidden: int = 64, temperature: float = 1.0) -> None:
        super().__init__()
        if num_adapters < 1 or temperature <= 0:
            raise ValueError(f'a router needs num_adapters >= 1 and temperature > 0, got {num_adapters}, '
                             f'{temperature}')
        self.temperature = temperature
        self.net = nn.Sequential(nn.LayerNorm(in_features), nn.Linear(in_features, hidden), nn.GELU(),
                                 nn.Linear(hidden, num_adapters))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, N)."""
        return self.net(features)

    def weights(self, features: torch.Tensor) -> torch.Tensor:
        return F.softmax(self(features) / self.temperature, dim=-1)


def fit_router(features: torch.Tensor, tasks: torch.Tensor, num_adapters: int, hidden: int = 64,
               temperature: float = 1.0, epochs: int = 100, lr: float = 1e-2, batch_size: int = 64, seed: int = 0
               ) -> tuple[Router, list[float]]:
    """A fresh :class:`Router` trained on ``features`` (M, C) to predict ``tasks`` (M,); returns it (eval mode) and
    the mean loss of each epoch."""
    torch.manual_seed(seed)
    router = Router(features.shape[1], num_adapters, hidden, temperature).to(features.device)
    opt = torch.optim.AdamW(router.parameters(), lr=lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(features), generator=g).split(batch_size):
            loss = F.cross_entropy(router(features[idx]), tasks[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(features))
    return router.eval(), losses


def memory_samples(memory: ReplayMemory, datasets: Sequence, tasks: Sequence[int] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The memory's images (M, ...) and their task ids (M,), read from ``datasets[t][i]`` for the ``(t, i)`` kept
    and nothing else. A sample is a tensor, a ``(tensor, ...)`` tuple or a packed dict with ``'inputs'``."""
    chosen = [(t, i) for t, i in memory.items() if tasks is None or t in tasks]
    if not chosen:
        raise ValueError(f'the memory holds no sample of tasks {tasks}; add_task to it after training each task')
    images = [_image(datasets[t][i]) for t, i in chosen]
    return torch.stack(images), torch.tensor([t for t, _ in chosen])


def _image(sample) -> torch.Tensor:
    if isinstance(sample, dict):
        sample = sample['inputs']
    elif isinstance(sample, (tuple, list)):
        sample = sample[0]
    return torch.as_tensor(sample)


def train_adapter(model: nn.Module, adapter: str, inputs: torch.Tensor, targets: torch.Tensor, epochs: int = 10,
                  lr: float = 1e-2, batch_size: int = 32, seed: int = 0,
                  logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[float]:
    """Train ``adapter`` alone on tensors (AdamW, cross-entropy); returns the mean loss of each epoch.

    Only that adapter acts and only its tensors are in the optimizer. ``logits_fn`` post-processes the logits
    (a class-incremental head masks the other tasks' classes)."""
    pv.set_adapter(model, adapter)
    params = pv.tuners.adapter_parameters(model, adapter)
    if not params:
        raise ValueError(f'adapter {adapter!r} has no trainable tensor')
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(len(inputs), generator=g), 0.0
        for idx in order.split(batch_size):
            logits = model(inputs[idx])
            loss = F.cross_entropy(logits_fn(logits) if logits_fn else logits, targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(inputs))
    model.eval()
    return losses


class L2R:
    """Per-task adapters on one frozen backbone, composed per sample by routers trained on the replay memory.

    Args:
        model: the backbone (a timm model; its head can be a per-adapter ``trainable`` delta).
        hidden, temperature: each router's hidden width and softmax temperature.
        features: ``(model, x) -> (B, C)`` frozen features of the ``'model'`` router (default :func:`pooled_features`).
        routers: ``'model'`` (one router), ``'block'`` or ``'layer'`` (one per block / adapted op, on its input).
        mode: ``'output'`` (mix the adapters' outputs) or ``'merge'`` (mix their task vectors per sample).
        inputs: what per-site routers read: ``'frozen'`` (each site's input in a frozen pre-pass) or ``'live'``
            (in the routed pass itself: one backbone pass instead of two; ``mode='output'`` only).
    """

    def __init__(self, model: nn.Module, hidden: int = 64, temperature: float = 1.0,
                 features: Features = pooled_features, routers: str = 'model', mode: str = 'output',
                 inputs: str = 'frozen') -> None:
        if routers not in GRANULARITIES:
            raise ValueError(f'routers must be one of {GRANULARITIES}, got {routers!r}')
        if mode not in ('output', 'merge'):
            raise ValueError(f"mode must be 'output' (mix the adapters' outputs) or 'merge' (mix their task "
                             f'vectors), got {mode!r}')
        if inputs not in ('frozen', 'live'):
            raise ValueError(f"inputs must be 'frozen' or 'live', got {inputs!r}")
        if inputs == 'live' and (routers == 'model' or mode != 'output'):
            raise ValueError("inputs='live' needs per-site routers (routers='block' or 'layer') and mode='output' "
                             f"(got routers={routers!r}, mode={mode!r}): a model-level router reads the pooled "
                             "output, known only after the pass")
        self.model, self.hidden, self.temperature, self.features = model, hidden, temperature, features
        self.granularity, self.mode, self.inputs = routers, mode, inputs
        self.adapters: list[str] = []
        self.router: Router | None = None  # routers='model'
        self.routers: dict[str, Router] = {}  # routers='block' / 'layer': site name -> router

    def add_task(self, name: str, plan, trainable: Sequence[str] = ()) -> str:
        """Add task ``name``'s adapter and make it the only active one (train it with :func:`train_adapter` or
        your own loop); the routers are stale until :meth:`fit_router`."""
        pv.add_adapter(self.model, name, plan, trainable=tuple(trainable))
        pv.set_adapter(self.model, name)
        self.adapters.append(name)
        self.router, self.routers = None, {}
        return name

    @property
    def fitted(self) -> bool:
        return self.router is not None or bool(self.routers)

    @torch.no_grad()
    def frozen_features(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor | dict[str, torch.Tensor]:
        """What the routers read: pooled frozen features (B, C), or (per-site routers) each site's pooled input."""
        parts = self._in_eval(self._read, x, batch_size)
        if isinstance(parts[0], dict):
            return {s: torch.cat([p[s] for p in parts]) for s in parts[0]}
        return torch.cat(parts)

    def _read(self, x: torch.Tensor):
        if self.granularity == 'model':
            return self.features(self.model, x)
        return site_inputs(self.model, routing_sites(self.model, self.adapters, self.granularity), x)

    def _live_input(self, x: torch.Tensor, site: str, batch_size: int = 256) -> torch.Tensor:
        read = functools.partial(live_site_input, self.model, site, self.routers, self.adapters)
        return torch.cat(self._in_eval(read, x, batch_size))

    def _in_eval(self, read: Callable[[torch.Tensor], Any], x: torch.Tensor, batch_size: int) -> list:
        """``read`` of each batch of ``x`` with the model in eval mode (its mode given back, also on an error)."""
        was = self.model.training
        self.model.eval()
        try:
            return [read(part) for part in x.split(batch_size)]
        finally:
            self.model.train(was)

    def fit_router(self, inputs: torch.Tensor, tasks: torch.Tensor, epochs: int = 100, lr: float = 1e-2,
                   batch_size: int = 64, seed: int = 0) -> list[float]:
        """Train fresh routers on memory samples ``inputs`` with their task ids ``tasks`` (the index of the
        sample's adapter in :attr:`adapters`); every adapter stays frozen. Returns the loss of each epoch (per-site
        routers: the mean over sites)."""
        if not self.adapters:
            raise RuntimeError('no adapter yet: add_task (and train it) before fitting the router')
        if int(tasks.max()) >= len(self.adapters) or int(tasks.min()) < 0:
            raise ValueError(f'task ids must index the {len(self.adapters)} adapters {self.adapters}; got '
                             f'{int(tasks.min())}..{int(tasks.max())}')
        kw = dict(hidden=self.hidden, temperature=self.temperature, epochs=epochs, lr=lr, batch_size=batch_size,
                  seed=seed)
        if self.inputs == 'live':
            return self._fit_live(inputs, tasks, kw)
        feats = self.frozen_features(inputs)  # the backbone is frozen: features once, reused every epoch
        if self.granularity == 'model':
            self.router, losses = fit_router(feats, tasks, len(self.adapters), **kw)
            return losses
        fitted = {s: fit_router(f, tasks, len(self.adapters), **kw) for s, f in feats.items()}
        self.routers = {s: r for s, (r, _) in fitted.items()}
        return [sum(v) / len(v) for v in zip(*(losses for _, losses in fitted.values()))]

    def _fit_live(self, inputs: torch.Tensor, tasks: torch.Tensor, kw: dict) -> list[float]:
        """Site by site in model order: each router on its site's inputs in the pass routed live by the routers
        fitted before it (the inputs it reads at inference)."""
        self.routers, curves = {}, []
        try:
            for site in routing_sites(self.model, self.adapters, self.granularity):
                router, losses = fit_router(self._live_input(inputs, site), tasks, len(self.adapters), **kw)
                self.routers[site] = router
                curves.append(losses)
        except BaseException:
            self.routers = {}  # no half-fitted set of routers
            raise
        return [sum(v) / len(v) for v in zip(*curves)]

    def weights(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Routing weights (B, N) over :attr:`adapters`; per-site routers: site name -> (B, N)."""
        if not self.fitted:
            raise RuntimeError('the router is not trained for the current adapters; call fit_router on the memory')
        if self.inputs == 'live':
            record: dict[str, torch.Tensor] = {}
            with torch.no_grad(), LiveSiteRouting(self.model, self.routers, self.adapters, record):
                self.model(x)
            return record
        feats = self.frozen_features(x)
        with torch.no_grad():
            if self.granularity == 'model':
                return self.router.weights(feats)
            return {s: self.routers[s].weights(f) for s, f in feats.items()}

    def __call__(self, x: torch.Tensor, weights: torch.Tensor | dict[str, torch.Tensor] | None = None
                 ) -> torch.Tensor:
        """The model's output with the adapters composed by ``weights`` (B, N) or site -> (B, N) (default: the
        routers')."""
        names = list(self.adapters)
        if weights is None and self.inputs == 'live':
            if not self.fitted:
                raise RuntimeError('the routers are not trained for the current adapters; call fit_router on the '
                                   'memory')
            with LiveSiteRouting(self.model, self.routers, names):
                return self.model(x)
        w = self.weights(x) if weights is None else weights
        if self.mode == 'merge':
            with MergedWeights(self.model, names, self._op_weights(w)):
                return self.model(x)
        if isinstance(w, dict):
            with SiteWeights(self.model, w, names):
                return self.model(x)
        with pv.tuner_context(adapter_weights=w, adapters=names):
            return self.model(x)

    @staticmethod
    def _op_weights(w):
        """op module name -> its weights: the model's (B, N), or its site's (the op itself, else its block)."""
        if isinstance(w, dict):
            return lambda op, h: w[op] if op in w else w[block_of(op)]
        return lambda op, h: w

    def top_adapter(self, x: torch.Tensor) -> torch.Tensor:
        """The router's top adapter per sample (B,) (per-site routers: the most frequent top over sites)."""
        return self.top_of(self.weights(x))

    @staticmethod
    def top_of(w: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """The top adapter per sample (B,) of routing weights :meth:`weights` gave."""
        if isinstance(w, dict):
            return torch.stack([v.argmax(dim=1) for v in w.values()], dim=1).mode(dim=1).values
        return w.argmax(dim=1)

    def routing_accuracy(self, x: torch.Tensor, tasks: torch.Tensor) -> float:
        """How often the router's top adapter is the sample's own task (per-site routers: over every site)."""
        w = self.weights(x)
        tops = list(w.values()) if isinstance(w, dict) else [w]
        return float(torch.stack([(v.argmax(dim=1) == tasks).float().mean() for v in tops]).mean())
