"""The zoo lock: the commit and sha256 a hub entry resolved to on its first download, so that an entry the table
does not fully pin still cannot change under a config.

``<cache_dir>/zoo.lock.json`` holds one record per zoo name::

    {"version": 1, "entries": {"vit_small_patch16_224.in21k": {"hub_repo": "timm/vit_small_patch16_224.augreg_in21k",
     "hub_file": "model.safetensors", "revision": "<40 hex>", "sha256": "<64 hex>", "locked_at": "<UTC ISO time>"}}}

A record is written on the first download of a hub entry whose table row lacks a revision or a sha256; later
downloads use its revision and check its sha256. What the table pins always wins: a record for another repo, file
or revision than the table's is superseded and replaced on the next download. The file is rewritten atomically (a
temporary file renamed over it) under a file lock, so concurrent processes cannot tear it, and a lock file that
cannot be read is never overwritten.
"""
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from ..atomic_write import write_atomic
from .errors import ZooLockError
from .paths import cache_dir
from .table import ZooEntry

LOCK_NAME = 'zoo.lock.json'
_VERSION = 1
_PATTERNS = {'revision': r'[0-9a-f]{40}', 'sha256': r'[0-9a-f]{64}'}


@dataclass(frozen=True)
class LockRecord:
    """What one hub entry resolved to when it was first downloaded."""

    hub_repo: str
    hub_file: str
    revision: str
    sha256: str
    locked_at: str


def lock_path() -> Path:
    return cache_dir() / LOCK_NAME


def needs_lock(entry: ZooEntry) -> bool:
    """A hub entry whose table row leaves its revision or its sha256 open."""
    return entry.hub_repo is not None and (entry.revision is None or entry.sha256 is None)


def _unreadable(path: Path, why: str) -> ZooLockError:
    return ZooLockError(f'the zoo lock file {path} cannot be read ({why}); it was left untouched. Repair it (it is '
                        'JSON: {"version": 1, "entries": {NAME: {hub_repo, hub_file, revision, sha256, locked_at}}}) '
                        'or move it away to lock every entry again on its next download.')


def _record(name: str, data: dict) -> LockRecord:
    names = {f.name for f in fields(LockRecord)}
    if not isinstance(data, dict) or set(data) != names or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f'record {name!r} must have exactly the string fields {", ".join(sorted(names))}')
    for key, pattern in _PATTERNS.items():
        if not re.fullmatch(pattern, data[key]):
            raise ValueError(f'record {name!r} has a malformed {key} {data[key]!r}')
    return LockRecord(**data)


def read_lock() -> dict[str, LockRecord]:
    """Every record of the lock file, {} when there is none; an unreadable file raises :class:`ZooLockError`."""
    path = lock_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _unreadable(path, str(e)) from e
    if not isinstance(data, dict) or data.get('version') != _VERSION or not isinstance(data.get('entries'), dict):
        raise _unreadable(path, f'expected {{"version": {_VERSION}, "entries": {{...}}}}')
    try:
        return {name: _record(name, record) for name, record in data['entries'].items()}
    except ValueError as e:
        raise _unreadable(path, str(e)) from e


def _applies(record: LockRecord, entry: ZooEntry) -> bool:
    return (record.hub_repo, record.hub_file) == (entry.hub_repo, entry.hub_file) and \
        entry.revision in (None, record.revision)


def lock_for(entry: ZooEntry) -> LockRecord | None:
    """The record that pins what ``entry``'s table row leaves open; None for a fully pinned or unlocked entry."""
    if not needs_lock(entry):
        return None
    record = read_lock().get(entry.name)
    return record if record is not None and _applies(record, entry) else None


def _write(path: Path, records: dict[str, LockRecord]) -> None:
    """Replace ``path`` by ``records`` atomically: the old file stays whole until the new one is complete."""
    text = json.dumps({'version': _VERSION, 'entries': {n: asdict(r) for n, r in sorted(records.items())}},
                      indent=2) + '\n'
    write_atomic(path, text.encode(), mode=0o644)


def _guard(path: Path) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f'{path}.lock', timeout=60)


def write_record(entry: ZooEntry, revision: str, sha256: str) -> LockRecord:
    """Lock ``entry`` to ``revision`` and ``sha256``; a record another process wrote meanwhile for other values
    raises :class:`ZooLockError` (nothing is overwritten)."""
    path = lock_path()
    new = LockRecord(entry.hub_repo, entry.hub_file, revision, sha256,
                     datetime.now(UTC).isoformat(timespec='seconds'))
    with _guard(path):
        records = read_lock()
        current = records.get(entry.name)
        if current is not None and _applies(current, entry):
            if (current.revision, current.sha256) != (revision, sha256):
                raise ZooLockError(f'{entry.name} was locked meanwhile in {path} to revision {current.revision} '
                                   f'(sha256 {current.sha256}), not {revision} ({sha256}); run the command again')
            return current
        records[entry.name] = new
        _write(path, records)
    return new


def remove_record(name: str) -> LockRecord:
    """Delete the record of ``name`` (the next download locks the entry again) and return it."""
    path = lock_path()
    with _guard(path):
        records = read_lock()
        if name not in records:
            raise ZooLockError(f'{path} holds no lock for {name!r}; locked: {", ".join(sorted(records)) or "none"}')
        removed = records.pop(name)
        _write(path, records)
    return removed


def with_lock(entry: ZooEntry, record: LockRecord | None) -> ZooEntry:
    """``entry`` with the revision and sha256 its table row leaves open taken from ``record``."""
    if record is None:
        return entry
    return replace(entry, revision=entry.revision or record.revision, sha256=entry.sha256 or record.sha256)


def pin_source(entry: ZooEntry) -> str:
    """What pins ``entry``: ``table`` (its row), ``lock`` (the lock file), ``table+lock`` (the row's revision or
    sha256, the lock's other one), ``partial`` (the row pins one of the two, nothing locked yet) or ``none``."""
    in_table = entry.sha256 is not None if entry.hub_repo is None else not needs_lock(entry)
    if in_table:
        return 'table'
    partly = entry.revision is not None or entry.sha256 is not None
    if entry.hub_repo is not None and lock_for(entry) is not None:
        return 'table+lock' if partly else 'lock'
    return 'partial' if partly else 'none'
