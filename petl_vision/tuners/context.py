"""Conditioning context (task id, instance embedding, router weights) for tuners, and the per-call scratch space.

A model sets the context around its backbone call; tuners read it. It is a ``contextvars.ContextVar``, so
values never leak between threads or between calls::

    with tuner_context(task='semseg'):
        feats = backbone(x)

The scratch space is how one tuner hands a tensor to another within one op's call (DAPT's internal prompt reads
its block's dynamic adapter output): the outermost ``TunedOp`` call opens it and clears it when it returns, so no
tensor (and no autograd graph) is left on a module. A checkpointed block re-runs the whole call, scratch included.
"""
import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar('petl_vision_tuner_context',
                                                                              default=None)


@contextlib.contextmanager
def tuner_context(**values: Any) -> Iterator[dict[str, Any]]:
    """Set conditioning values for the duration of the ``with`` block (nested blocks override)."""
    merged = {**(_CONTEXT.get() or {}), **values}
    token = _CONTEXT.set(merged)
    try:
        yield merged
    finally:
        _CONTEXT.reset(token)


def current_context() -> dict[str, Any]:
    """The values set by the innermost enclosing :func:`tuner_context` (empty outside one)."""
    return dict(_CONTEXT.get() or {})


def context_values() -> Mapping[str, Any]:
    """The innermost context's values, read-only and not copied (every tuned op reads them on each call)."""
    return _CONTEXT.get() or _EMPTY


def require_context(key: str, tuner: str) -> Any:
    ctx = _CONTEXT.get() or {}
    if key not in ctx:
        raise RuntimeError(f'{tuner} needs {key!r} in the tuner context; call the model inside '
                           f'`with petl_vision.tuner_context({key}=...):`')
    return ctx[key]


_SCRATCH: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar('petl_vision_scratch', default=None)


@contextlib.contextmanager
def call_scratch() -> Iterator[dict[Any, Any]]:
    """Open the scratch space for one op call, unless an enclosing op call has one open already."""
    current = _SCRATCH.get()
    if current is not None:
        yield current
        return
    token = _SCRATCH.set({})
    try:
        yield _SCRATCH.get()
    finally:
        _SCRATCH.reset(token)


def scratch() -> dict[Any, Any]:
    """The scratch space of the op call in progress; an error outside one (tuners run inside ``TunedOp``)."""
    current = _SCRATCH.get()
    if current is None:
        raise RuntimeError('the tuner scratch space exists only while a TunedOp runs; call the model, not the tuner')
    return current
