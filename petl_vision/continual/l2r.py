"""L2R (Araujo, Moens & Tuytelaars, Findings of EMNLP 2024, arXiv 2408.09053): learning to route between
per-task adapters in continual learning.

Each task's adapter is trained in isolation (:meth:`L2R.add_task` adds it with ``pv.add_adapter`` and makes it the
only active one, so older adapters get no update and no interference). Before inference a router is trained on
the replay memory to give each sample weights over the adapters seen so far, and the adapters are composed by the
core's soft routing, one backbone pass for all of them::

    with pv.tuner_context(adapter_weights=W, adapters=names):   # W (B, N), each row a softmax
        logits = model(x)

The router (:class:`Router`) is a small MLP on the frozen backbone's pooled features (every adapter off:
``pv.tuner_context(adapter=None)``), retrained from scratch after each task on the memory only, with the task id
of each memory sample as its target (cross-entropy). The paper routes per adapted layer on that layer's input;
this router is one per model on the pooled features (the same weights at every layer), which needs one frozen
pass for the features and one routed pass.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.continual.memory import ReplayMemory

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
    """Per-task adapters on one frozen backbone, composed per sample by a router trained on the replay memory.

    Args:
        model: the backbone (a timm model; its head can be a per-adapter ``trainable`` delta).
        hidden, temperature: the router's hidden width and softmax temperature.
        features: ``(model, x) -> (B, C)`` frozen features for the router (default :func:`pooled_features`).
    """

    def __init__(self, model: nn.Module, hidden: int = 64, temperature: float = 1.0,
                 features: Features = pooled_features) -> None:
        self.model, self.hidden, self.temperature, self.features = model, hidden, temperature, features
        self.adapters: list[str] = []
        self.router: Router | None = None

    def add_task(self, name: str, plan, trainable: Sequence[str] = ()) -> str:
        """Add task ``name``'s adapter and make it the only active one (train it with :func:`train_adapter` or
        your own loop); the router is stale until :meth:`fit_router`."""
        pv.add_adapter(self.model, name, plan, trainable=tuple(trainable))
        pv.set_adapter(self.model, name)
        self.adapters.append(name)
        self.router = None
        return name

    @torch.no_grad()
    def frozen_features(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        was = self.model.training
        self.model.eval()
        out = torch.cat([self.features(self.model, part) for part in x.split(batch_size)])
        self.model.train(was)
        return out

    def fit_router(self, inputs: torch.Tensor, tasks: torch.Tensor, epochs: int = 100, lr: float = 1e-2,
                   batch_size: int = 64, seed: int = 0) -> list[float]:
        """Train a fresh router on memory samples ``inputs`` with their task ids ``tasks`` (the index of the
        sample's adapter in :attr:`adapters`); every adapter stays frozen. Returns the loss of each epoch."""
        if not self.adapters:
            raise RuntimeError('no adapter yet: add_task (and train it) before fitting the router')
        if int(tasks.max()) >= len(self.adapters) or int(tasks.min()) < 0:
            raise ValueError(f'task ids must index the {len(self.adapters)} adapters {self.adapters}; got '
                             f'{int(tasks.min())}..{int(tasks.max())}')
        feats = self.frozen_features(inputs)  # the backbone is frozen: features once, reused every epoch
        torch.manual_seed(seed)
        router = Router(feats.shape[1], len(self.adapters), self.hidden, self.temperature)
        opt = torch.optim.AdamW(router.parameters(), lr=lr, weight_decay=1e-4)
        g = torch.Generator().manual_seed(seed)
        losses = []
        for _ in range(epochs):
            total = 0.0
            for idx in torch.randperm(len(feats), generator=g).split(batch_size):
                loss = F.cross_entropy(router(feats[idx]), tasks[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            losses.append(total / len(feats))
        self.router = router.eval()
        return losses

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Routing weights (B, N) over :attr:`adapters`."""
        if self.router is None:
            raise RuntimeError('the router is not trained for the current adapters; call fit_router on the memory')
        with torch.no_grad():
            return self.router.weights(self.frozen_features(x))

    def __call__(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The model's output with the adapters composed by ``weights`` (B, N) (default: the router's)."""
        w = self.weights(x) if weights is None else weights
        with pv.tuner_context(adapter_weights=w, adapters=list(self.adapters)):
            return self.model(x)

    def routing_accuracy(self, x: torch.Tensor, tasks: torch.Tensor) -> float:
        """How often the router's top adapter is the sample's own task."""
        return float((self.weights(x).argmax(dim=1) == tasks).float().mean())
