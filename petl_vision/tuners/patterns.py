"""Glob patterns over module names, and the 'logical' names of a tuned model.

``*`` matches one dotted component (``blocks.*.attn.qkv``), ``**`` any number of them. Logical names
are the names of the untuned backbone: ``TunedOp``'s ``base`` level is hidden and its tuners are not
targets, so plans and ``trainable`` patterns mean the same before and after tuning.
"""
import re
from collections.abc import Iterator
from difflib import get_close_matches
from functools import lru_cache

from torch import nn

from .sources import SOURCES_ATTR


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern:
    parts = []
    for token in re.split(r'(\*\*|\*)', pattern):
        parts.append({'**': r'.*', '*': r'[^.]+'}.get(token, re.escape(token)))
    return re.compile(''.join(parts) + r'\Z')


def as_patterns(targets: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if targets is None:
        return []
    return [targets] if isinstance(targets, str) else list(targets)


def logical_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(logical name, module) for every module of the backbone, tuned ops yielded as their ``TunedOp``."""
    from .tuned_op import TunedOp

    def walk(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
        for child_name, child in module.named_children():
            if not prefix and child_name == SOURCES_ATTR:  # shared weight sources are tuner state, not backbone
                continue
            name = f'{prefix}{child_name}'
            yield name, child
            inner = child.base if isinstance(child, TunedOp) else child
            yield from walk(inner, name + '.')

    yield from walk(model, '')


def logical_param_name(name: str, model: nn.Module) -> str | None:
    """Logical name of parameter ``name``; None for tuner parameters."""
    from .tuned_op import TunedOp

    parts, out, module = name.split('.'), [], model
    if parts[0] == SOURCES_ATTR:
        return None
    for part in parts[:-1]:
        if isinstance(module, TunedOp):
            if part == 'tuners':
                return None
            module = module.base
            continue
        module = getattr(module, part)
        out.append(part)
    return '.'.join(out + parts[-1:])


def match_modules(model: nn.Module, patterns: list[str], what: str) -> list[tuple[str, nn.Module]]:
    """Modules whose logical name matches any pattern; a pattern matching nothing is an error."""
    names = dict(logical_modules(model))
    found: dict[str, nn.Module] = {}
    for pattern in patterns:
        hits = [n for n in names if compile_glob(pattern).match(n)]
        if not hits:
            close = get_close_matches(pattern.replace('**', '0').replace('*', '0'), list(names), n=5, cutoff=0.5)
            raise ValueError(f'{what}: pattern {pattern!r} matched no module; closest: '
                             f'{", ".join(close) if close else "(none)"}')
        found.update((n, names[n]) for n in hits)
    return list(found.items())


def matches_prefix(name: str, patterns: list[str]) -> bool:
    """True if the parameter ``name`` or one of its dotted prefixes matches a pattern (``head`` -> head.fc.weight)."""
    parts = name.split('.')
    prefixes = ['.'.join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(compile_glob(p).match(pre) for p in patterns for pre in prefixes)
