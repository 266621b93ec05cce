"""Shared weight sources: modules that several tuners take their weights from (a hypernetwork).

A tuner whose weights are generated rather than stored (Hyperformer, Polyhistor) asks, in ``bind``, for a
shared source by key; the first tuner creates it, the others get the same module::

    def bind(self, lookup):
        self._source = [lookup.shared('polyhistor', lambda: HyperNetwork(...))]

Sources live in one container on the tuned model, ``model.petl_sources[adapter]`` (``nn.ModuleDict``s), so that

- their parameters are registered once: ``count_parameters`` and optimizers see them once;
- ``save_tuners`` / ``load_tuners`` include them (they are trainable tensors of the model, and
  ``load_tuners`` rebuilds them by re-applying the plan before copying the tensors);
- they are not part of the backbone: logical names skip the container (``patterns.py``), like tuners, so
  backbone fingerprints and ``trainable`` patterns are unchanged by them.
"""
from collections.abc import Callable

from torch import nn

SOURCES_ATTR = 'petl_sources'


def shared_sources(model: nn.Module) -> nn.ModuleDict:
    """The model's container of shared sources (created empty on first use)."""
    sources = getattr(model, SOURCES_ATTR, None)
    if sources is None:
        sources = nn.ModuleDict()
        setattr(model, SOURCES_ATTR, sources)
    return sources


class TunerLookup:
    """What ``Tuner.bind`` receives: call it as ``lookup(op_name, tuner_name)`` to find another tuner of the
    same adapter, or use :meth:`shared` to get (or create) a shared weight source of that adapter."""

    def __init__(self, model: nn.Module, find_tuner: Callable[[str, str], nn.Module | None], adapter: str):
        self.model = model
        self.adapter = adapter
        self._find_tuner = find_tuner

    def __call__(self, op_name: str, tuner_name: str) -> nn.Module | None:
        return self._find_tuner(op_name, tuner_name)

    def shared(self, key: str, factory: Callable[[], nn.Module], settings: dict | None = None,
               who: str = 'a tuner') -> nn.Module:
        """The source stored under ``key``; ``factory()`` builds it the first time (on the model's device).

        ``settings``: what the source depends on; every tuner binding to ``key`` must give the same, else an error
        naming ``who`` (two plan entries that would silently share one hypernetwork)."""
        container = shared_sources(self.model)
        if self.adapter not in container:
            container[self.adapter] = nn.ModuleDict()
        sources = container[self.adapter]
        if key not in sources:
            source = factory()
            if settings is not None:
                source.settings = settings
            ref = next(self.model.parameters(), None)
            sources[key] = source.to(ref.device) if ref is not None else source
        source = sources[key]
        if settings is not None and getattr(source, 'settings', None) != settings:
            raise ValueError(f'{who}: the shared source {key!r} was built by another plan entry with other settings '
                             f'({getattr(source, "settings", None)}); give this entry its own `name`')
        return source
