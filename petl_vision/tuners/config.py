"""Dataclass configs for tuners: built from plan dicts with errors that name bad keys and mistyped values."""
import dataclasses
import types
import typing
from difflib import get_close_matches
from typing import Any

_SCALARS = (bool, int, float, str)


@dataclasses.dataclass
class TunerConfig:
    """Fields every tuner accepts. ``targets`` is a glob (or list of globs) over module names."""

    targets: str | list[str] | None = None
    name: str | None = None

    @classmethod
    def from_dict(cls, type_name: str, cfg: dict[str, Any]) -> 'TunerConfig':
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in cfg if k not in fields]
        if unknown:
            msgs = []
            for key in unknown:
                close = get_close_matches(key, fields, n=1)
                msgs.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
            raise TypeError(f'{type_name} got unknown config key(s) {", ".join(msgs)}; '
                            f'valid keys: {", ".join(sorted(fields))}')
        hints = typing.get_type_hints(cls)
        for key, value in cfg.items():
            _check_type(type_name, key, value, hints.get(key))
        return cls(**cfg)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check_choice(self, field: str, choices: tuple) -> None:
        value = getattr(self, field)
        if value not in choices:
            raise ValueError(f'{type(self).__name__}.{field}={value!r} is not one of {choices}')


def _accepts(kind: type, value: Any) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_type(type_name: str, key: str, value: Any, hint: Any) -> None:
    """Refuse a value of the wrong scalar type (``rank=2.5``) with the field named; containers are left to the
    config's own checks."""
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    if value is None and type(None) in members:
        return
    scalars = [m for m in members if m in _SCALARS]
    if len(scalars) != len([m for m in members if m is not type(None)]):
        return  # a list or another type among the choices: not checked here
    if scalars and not any(_accepts(m, value) for m in scalars):
        names = ' or '.join(m.__name__ for m in scalars)
        raise TypeError(f'{type_name} {key} must be {names}, got {value!r} ({type(value).__name__})')
