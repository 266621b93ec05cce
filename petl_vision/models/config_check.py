"""Config keys that match nothing fail with the closest valid key ("did you mean"), not with Python's
``__init__() got an unexpected keyword argument 'plna'``.

- model classes: :func:`check_init_keys` (a class decorator on the registered models);
- timm backbones: :func:`explain_backbone_error`, used by :func:`~.backbone_builder.build_timm_backbone`;
- mmengine loops (``train_cfg`` / ``val_cfg`` / ``test_cfg``) and the model: :func:`check_config`, for the tools
  to call on a merged config before the runner is built.
"""
from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from difflib import get_close_matches
from typing import Any, TypeVar

T = TypeVar('T')
# arguments of timm.create_model and of build_timm_backbone itself, accepted besides the model class's own
TIMM_CREATE_ARGS = ('model', 'pretrained', 'pretrained_cfg', 'pretrained_cfg_overlay', 'checkpoint_path',
                    'cache_dir', 'scriptable', 'exportable', 'no_jit')
LOOP_INJECTED = ('runner', 'dataloader', 'evaluator')  # the Runner passes these itself
UNEXPECTED = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def unknown_keys_message(where: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """``"<where> got unknown key(s) 'plna' (did you mean 'plan'?); valid keys: ..."``."""
    known = sorted(set(known))
    parts = []
    for key in unknown:
        close = get_close_matches(key, known, n=1, cutoff=0.6)
        parts.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ''))
    return f'{where} got unknown key(s) {", ".join(parts)}; valid keys: {", ".join(known)}'


def init_keys(fn: Callable) -> tuple[str, ...]:
    """The keyword names ``fn`` (an ``__init__`` or a class) accepts, without ``self`` and ``*args``/``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params if p.kind in named and p.name != 'self')


def takes_any_keyword(fn: Callable) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def check_init_keys(cls: type[T]) -> type[T]:
    """Class decorator: an unknown keyword argument to ``cls(...)`` raises ``TypeError`` naming the closest key."""
    init = cls.__init__
    known = init_keys(init)

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        unknown = [k for k in kwargs if k not in known]
        if unknown:
            raise TypeError(unknown_keys_message(f'{cls.__name__} (model config)', unknown, known))
        init(self, *args, **kwargs)

    cls.__init__ = checked_init
    return cls


def _timm_class(model: str, class_name: str) -> type | None:
    import timm.models

    entry = timm.models.model_entrypoint(model) if timm.models.is_model(model) else None
    for module in (sys.modules.get(getattr(entry, '__module__', '')), timm.models):
        cls = getattr(module, class_name, None)
        if isinstance(cls, type):
            return cls
    return None


def explain_backbone_error(err: TypeError, model: str) -> TypeError | None:
    """For timm's ``<Class>.__init__() got an unexpected keyword argument 'x'``: a ``TypeError`` naming the
    closest key of the backbone config; ``None`` for any other error."""
    match = UNEXPECTED.search(str(err))
    cls = _timm_class(model, match.group(1)) if match else None
    if cls is None:
        return None
    known = (*init_keys(cls.__init__), *TIMM_CREATE_ARGS)
    return TypeError(unknown_keys_message(f"backbone (timm '{model}', {cls.__name__})", [match.group(2)], known))


def _loop_class(section: str, loop: Mapping[str, Any]) -> type | None:
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop

    from petl_vision.registry import LOOPS

    if 'type' in loop:
        loop_type = loop['type']
        return loop_type if isinstance(loop_type, type) else LOOPS.get(loop_type)
    if section == 'train_cfg':
        return EpochBasedTrainLoop if loop.get('by_epoch', True) else IterBasedTrainLoop
    return ValLoop if section == 'val_cfg' else TestLoop


def check_loop_keys(cfg: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` when ``train_cfg`` / ``val_cfg`` / ``test_cfg`` hold a key their loop does not take."""
    for section in ('train_cfg', 'val_cfg', 'test_cfg'):
        loop = cfg.get(section)
        cls = _loop_class(section, loop) if isinstance(loop, Mapping) else None
        if cls is None or takes_any_keyword(cls.__init__):
            continue
        known = [k for k in init_keys(cls.__init__) if k not in LOOP_INJECTED]
        known += ['type'] if 'type' in loop else (['by_epoch'] if section == 'train_cfg' else [])
        unknown = [k for k in loop if k not in known]
        if unknown:
            raise TypeError(unknown_keys_message(f'{section} ({cls.__name__})', unknown, known))


def check_model_keys(cfg: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` when ``model`` holds a key its registered class does not take."""
    from petl_vision.registry import MODELS

    model = cfg.get('model')
    model_type = model.get('type') if isinstance(model, Mapping) else None
    cls = model_type if isinstance(model_type, type) else MODELS.get(model_type) if model_type else None
    if cls is None or takes_any_keyword(cls.__init__):
        return
    known = init_keys(cls.__init__)
    unknown = [k for k in model if k != 'type' and k not in known]
    if unknown:
        raise TypeError(unknown_keys_message(f'model ({cls.__name__})', unknown, known))


def check_config(cfg: Mapping[str, Any]) -> None:
    """The model's and the loops' keys, before anything is built (see the module docstring)."""
    check_model_keys(cfg)
    check_loop_keys(cfg)
