"""Conditioning context (task id, instance embedding, router weights) for tuners.

A model sets it around its backbone call; tuners read it. It is a ``contextvars.ContextVar``, so
values never leak between threads or between calls::

    with tuner_context(task='semseg'):
        feats = backbone(x)
"""
import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

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


def require_context(key: str, tuner: str) -> Any:
    ctx = _CONTEXT.get() or {}
    if key not in ctx:
        raise RuntimeError(f'{tuner} needs {key!r} in the tuner context; call the model inside '
                           f'`with petl_vision.tuner_context({key}=...):`')
    return ctx[key]
