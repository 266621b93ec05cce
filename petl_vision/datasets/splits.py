"""Held-out splits never leak into training: every dataset that carves ``val`` (or ``test``) out of the same source
as ``train`` records the members of the split it hands out, and building a split that shares members with a live
split of another role from the same source is refused.

The record is process-wide and keyed by the source (a file or folder), so it catches a train loader and a val
loader given different split definitions (``val_size``, ``seed``, fractions) wherever they were configured. Only
live datasets count (weak references): a finished run's datasets do not block the next run of a sweep.

``trainval`` is the declared union of ``train`` and ``val`` (the final runs train on it), so only ``test`` must be
disjoint from it.
"""
from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

# split -> the splits it may share members with (it contains them or they contain it)
OVERLAP_ALLOWED: dict[str, frozenset[str]] = {
    'train': frozenset({'trainval'}),
    'val': frozenset({'trainval'}),
    'trainval': frozenset({'train', 'val'}),
    'test': frozenset(),
}


@dataclass(frozen=True)
class SplitRecord:
    """The members of one split handed out by a live dataset; ``definition`` is how the split was drawn."""

    owner: weakref.ref
    split: str
    definition: tuple[tuple[str, object], ...]
    members: frozenset


_RECORDS: dict[str, list[SplitRecord]] = {}
_LOCK = threading.Lock()


def _live(source: str) -> list[SplitRecord]:
    records = [r for r in _RECORDS.get(source, []) if r.owner() is not None]
    _RECORDS[source] = records
    return records


def _conflicts(source: str, split: str, members: frozenset) -> list[tuple[SplitRecord, int]]:
    allowed = OVERLAP_ALLOWED.get(split, frozenset())
    return [(r, len(r.members & members)) for r in _live(source)
            if r.split != split and r.split not in allowed and not r.members.isdisjoint(members)]


def _describe(split: str, definition: Iterable[tuple[str, object]]) -> str:
    args = ', '.join(f'{k}={v!r}' for k, v in definition)
    return f"'{split}' ({args})" if args else f"'{split}'"


def record_split(owner: object, source: str, split: str, members: Iterable[Hashable],
                 definition: Mapping[str, object] | None = None) -> None:
    """Record that ``owner`` (a dataset) hands out ``members`` of ``source`` as ``split``; raise ``ValueError`` when
    a live dataset hands out some of them as a split they must be disjoint from."""
    members = frozenset(members)
    definition = tuple(sorted((definition or {}).items()))
    with _LOCK:
        found = _conflicts(source, split, members)
        if found:
            gc.collect()  # a finished run's datasets may only wait for the cycle collector
            found = _conflicts(source, split, members)
        if found:
            other, shared = found[0]
            raise ValueError(
                f'{source}: split {_describe(split, definition)} shares {shared} of its {len(members)} items with '
                f'the live split {_describe(other.split, other.definition)}; held-out data would be trained on. '
                'Give every loader of this source the same split definition (the dataset bases define it once, '
                'as the top-level `data_split`: override data_split.<key>=... rather than one loader\'s keys).')
        _RECORDS.setdefault(source, []).append(SplitRecord(weakref.ref(owner), split, definition, members))


def check_disjoint_files(dataset: str, parts: Mapping[str, Iterable[Hashable]]) -> None:
    """Raise ``ValueError`` when two split files of one dataset (``{file name: items}``) list the same item."""
    names = list(parts)
    sets = {name: set(parts[name]) for name in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = sets[a] & sets[b]
            if shared:
                raise ValueError(f'{dataset}: {a} and {b} both list {len(shared)} items (e.g. {sorted(shared)[:3]}); '
                                 'a held-out split must not hold training items: fix or regenerate the split files')
