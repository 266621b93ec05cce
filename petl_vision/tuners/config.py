"""Dataclass configs for tuners: built from plan dicts with errors that name bad keys."""
import dataclasses
from difflib import get_close_matches
from typing import Any


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
        return cls(**cfg)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check_choice(self, field: str, choices: tuple) -> None:
        value = getattr(self, field)
        if value not in choices:
            raise ValueError(f'{type(self).__name__}.{field}={value!r} is not one of {choices}')
