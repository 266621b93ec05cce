"""Which adapters act on each row of an op's input: one active adapter, a fixed weighted set, or per sample.

The routing of a forward pass comes from the tuner context when a model sets it::

    with tuner_context(adapter=['a', 'b', '__base__', 'a']):   # hard: one adapter name per sample (None/'__base__':
        model(x)                                              # the frozen model)
    with tuner_context(adapter_weights=W, adapters=['a', 'b']):  # soft: W (B, N), each sample's mix of N adapters
        model(x)

and otherwise from the model's active adapters (``set_adapter``). An op whose input holds several rows per sample
(Swin's window attention: (B * windows, N, C), windows sample-major as timm's ``window_partition`` lays them out)
gives every row of a sample that sample's route.
"""
import dataclasses
from collections.abc import Sequence

import torch

from .context import context_values

BASE = '__base__'


@dataclasses.dataclass
class Route:
    """``weights is None``: hard routing, ``groups`` maps each adapter (or ``BASE``) to the rows it takes;
    else soft routing, ``weights`` (rows, N) over ``adapters``."""

    adapters: list[str]
    groups: dict[str, torch.Tensor] | None = None
    weights: torch.Tensor | None = None
    only: str | None = None  # every row takes this adapter (``BASE``: the frozen op); no index tensors needed

    @property
    def single(self) -> str | None:
        """The one adapter every row takes (``BASE`` for the frozen op), or None."""
        if self.only is not None:
            return self.only
        if self.groups is not None and len(self.groups) == 1:
            return next(iter(self.groups))
        return None


def route(rows: int, active: Sequence[str], weights: Sequence[float] | None, known: Sequence[str],
          device: torch.device) -> Route:
    """The route of an op's ``rows`` input rows, from the context or else ``active`` (with fixed ``weights``)."""
    ctx = context_values()
    if 'adapter_weights' in ctx:
        return _soft(rows, ctx['adapter_weights'], ctx.get('adapters'), known, device)
    if 'adapter' in ctx:
        return _hard(rows, ctx['adapter'], known, device)
    if weights is not None:
        w = torch.tensor(list(weights), device=device, dtype=torch.float32).expand(rows, -1)
        return Route(list(active), weights=w)
    if len(active) == 1:
        return Route(list(active), only=active[0])
    if not active:
        return Route([], only=BASE)
    raise RuntimeError(f'adapters {list(active)} are active without weights; call set_adapter(model, names, weights)')


def _per_row(rows: int, batch: int) -> int:
    if rows % batch:
        raise ValueError(f'an op got {rows} rows for a batch of {batch} routed samples; route a batch whose size '
                         'matches the model input')
    return rows // batch


def _hard(rows: int, names: str | Sequence[str | None], known: Sequence[str], device: torch.device) -> Route:
    if isinstance(names, str) or names is None:
        name = names or BASE
        _check_known([name], known)
        return Route([name], only=name)
    names = [n or BASE for n in names]
    _check_known(names, known)
    k = _per_row(rows, len(names))
    groups = {}
    for name in dict.fromkeys(names):
        samples = torch.tensor([i for i, n in enumerate(names) if n == name], device=device)
        groups[name] = (samples[:, None] * k + torch.arange(k, device=device)).reshape(-1)  # each sample's k rows
    return Route(list(groups), groups=groups)


def _soft(rows: int, weights: torch.Tensor, names: Sequence[str] | None, known: Sequence[str],
          device: torch.device) -> Route:
    if names is None:
        raise ValueError('tuner_context(adapter_weights=W) needs adapters=[names] for the columns of W')
    names = list(names)
    _check_known(names, known)
    if weights.ndim != 2 or weights.shape[1] != len(names):
        raise ValueError(f'adapter_weights must be (batch, {len(names)}) for adapters={names}, got '
                         f'{tuple(weights.shape)}')
    k = _per_row(rows, weights.shape[0])
    return Route(names, weights=weights.to(device).repeat_interleave(k, dim=0))


def _check_known(names: Sequence[str], known: Sequence[str]) -> None:
    unknown = sorted({n for n in names if n != BASE and n not in known})
    if unknown:
        raise KeyError(f'no adapter named {unknown} on this model; adapters: {list(known)} (or {BASE!r} / None '
                       'for the frozen model)')
