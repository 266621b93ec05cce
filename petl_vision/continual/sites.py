"""Where L2R's per-layer routers sit, what they read, and how their weights reach the adapted ops.

A *site* is a module whose input a router reads and whose tuned ops its weights steer:

- ``'layer'``: every tuned op holding one of the adapters (``blocks.3.attn.qkv``, ``head``);
- ``'block'``: the numbered block around each such op (``blocks.3`` for ``blocks.3.attn.qkv``, found from the module
  name, never from timm's classes); an op in no numbered block (the head) is its own site.

:func:`site_inputs` runs the frozen model (every adapter off) with a forward pre-hook on each site and returns its
pooled input, ``(B, C)``: the mean over every token / spatial dim of ``args[0]`` (``(B, N, C)`` -> ``(B, C)``; an
input already ``(B, C)`` stays). :class:`SiteWeights` is the routed pass: a pre-hook on each site enters
``pv.tuner_context(adapter_weights=W_site, adapters=names)`` and a forward hook leaves it, so the ops inside the
site mix the adapters by that site's weights. The weights come from the frozen pass's site inputs, the same
inputs the routers were trained on (one frozen pass, one routed pass, as the per-model router).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

import petl_vision as pv
from petl_vision.tuners.tuned_op import TunedOp

GRANULARITIES = ('model', 'block', 'layer')


def adapted_ops(model: nn.Module, adapters: Sequence[str]) -> dict[str, TunedOp]:
    """Module name -> tuned op, for every op with a tuner of any of ``adapters``."""
    ops = {n: m for n, m in model.named_modules() if isinstance(m, TunedOp) and any(a in m.tuners for a in adapters)}
    if not ops:
        raise ValueError(f'no tuned op holds a tuner of adapters {list(adapters)}: nothing to route')
    return ops


def block_of(name: str) -> str:
    """``'blocks.3.attn.qkv'`` -> ``'blocks.3'`` (the prefix up to the first numeric part); ``'head'`` -> ``'head'``."""
    parts = name.split('.')
    for i, part in enumerate(parts):
        if part.isdigit():
            return '.'.join(parts[:i + 1])
    return name


def routing_sites(model: nn.Module, adapters: Sequence[str], granularity: str) -> list[str]:
    """The module names of the sites, in model order."""
    if granularity not in ('block', 'layer'):
        raise ValueError(f"per-site routers need granularity 'block' or 'layer', got {granularity!r}")
    names = list(adapted_ops(model, adapters))
    return list(dict.fromkeys(names if granularity == 'layer' else [block_of(n) for n in names]))


def pool_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, ..., C) -> (B, C): the mean over every dim between the batch and the channels."""
    return x.reshape(x.shape[0], -1, x.shape[-1]).mean(dim=1)


@torch.no_grad()
def site_inputs(model: nn.Module, sites: Sequence[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each site's pooled input (B, C) in the frozen model (every adapter off)."""
    seen: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, args):
            seen[name] = pool_tokens(args[0])
        return hook

    handles = [model.get_submodule(s).register_forward_pre_hook(record(s)) for s in sites]
    try:
        with pv.tuner_context(adapter=None):
            model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [s for s in sites if s not in seen]
    if missing:
        raise RuntimeError(f'routing sites {missing} were not called in the forward pass')
    return seen


class SiteWeights:
    """``with SiteWeights(model, weights, adapters): model(x)``: the ops inside each site ``s`` mix ``adapters`` by
    ``weights[s]`` (B, N)."""

    def __init__(self, model: nn.Module, weights: dict[str, torch.Tensor], adapters: Sequence[str]) -> None:
        self.model, self.weights, self.adapters = model, weights, list(adapters)
        self._stack: list[contextlib.AbstractContextManager] = []
        self._handles: list = []

    def _enter(self, name: str):
        def pre(module, args):
            context = pv.tuner_context(adapter_weights=self.weights[name], adapters=self.adapters)
            context.__enter__()
            self._stack.append(context)
        return pre

    def _leave(self, module, args, output):
        self._stack.pop().__exit__(None, None, None)

    def __enter__(self) -> SiteWeights:
        for s in self.weights:
            module = self.model.get_submodule(s)
            self._handles += [module.register_forward_pre_hook(self._enter(s)),
                              module.register_forward_hook(self._leave)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        while self._stack:  # an error inside a site left its context open
            self._stack.pop().__exit__(*exc)


class LiveSiteRouting(SiteWeights):
    """``with LiveSiteRouting(model, routers, adapters): model(x)``: one pass, each site's router reads that site's
    pooled input in this same (routed) pass and its ops mix ``adapters`` by the router's weights. ``record``: a dict
    that receives each site's weights (B, N)."""

    def __init__(self, model: nn.Module, routers: dict[str, nn.Module], adapters: Sequence[str],
                 record: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__(model, dict.fromkeys(routers), adapters)
        self.routers, self.record = routers, record

    def _enter(self, name: str):
        def pre(module, args):
            weights = self.routers[name].weights(pool_tokens(args[0]))
            if self.record is not None:
                self.record[name] = weights
            context = pv.tuner_context(adapter_weights=weights, adapters=self.adapters)
            context.__enter__()
            self._stack.append(context)
        return pre


class _Reached(Exception):
    """Raised by the hook of the site being read: the rest of the pass is not needed."""


@torch.no_grad()
def live_site_input(model: nn.Module, site: str, routers: dict[str, nn.Module], adapters: Sequence[str],
                    x: torch.Tensor) -> torch.Tensor:
    """The pooled input (B, C) of ``site`` in the pass where the sites of ``routers`` (those before it) route
    ``adapters`` live (:class:`LiveSiteRouting`): what a live router at ``site`` reads at inference. The pass
    stops at ``site``."""
    seen: list[torch.Tensor] = []

    def record(module, args):
        seen.append(pool_tokens(args[0]))
        raise _Reached

    handle = model.get_submodule(site).register_forward_pre_hook(record)
    try:
        with LiveSiteRouting(model, routers, adapters):
            model(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not seen:
        raise RuntimeError(f'routing site {site!r} was not called in the forward pass')
    return seen[0]
