"""The library's own tuner registry: ``type`` names in a plan -> tuner classes.

Plain Python, no mmengine: tuners are importable and testable without it. Registering a tuner also
enrols it in the generic test suite (``tests/tuners/test_generic_suite.py``) through its
``default_targets``.
"""
from difflib import get_close_matches

TUNERS: dict[str, type] = {}


def register_tuner(cls: type) -> type:
    """Class decorator: register ``cls`` under ``cls.type_name``; names must be unique."""
    name = cls.type_name
    if name in TUNERS and TUNERS[name] is not cls:
        raise ValueError(f'tuner type {name!r} is already registered by {TUNERS[name].__module__}; pick another name')
    TUNERS[name] = cls
    return cls


def get_tuner_cls(name: str) -> type:
    """Look a tuner class up by its plan ``type``; an unknown name lists the known ones."""
    if name not in TUNERS:
        close = get_close_matches(name, TUNERS, n=3, cutoff=0.4)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise KeyError(f'unknown tuner type {name!r}.{hint} Known types: {", ".join(sorted(TUNERS))}')
    return TUNERS[name]
