"""Adapter libraries on disk: a directory of tuner files and an index, ``library.json``, saying what each one is.

::

    my_library/
      library.json                      {"format": "petl_vision.library/1", "adapters": {name: entry, ...}}
      cars-3f2a91c0.safetensors         one tuner file per adapter (pv.save_tuners' format), <name>-<sha256[:8]>
      .library.lock                     held (flock) while the index is read, changed and written back

An entry (:class:`LibraryEntry`): name, task, dataset, backbone fingerprint (as saved in the file), metrics, sha256
of the file's bytes, file name, plan summary, trainable parameter count, created (UTC, ISO 8601) and, once set
(:meth:`AdapterLibrary.set_embedding`), the embedding of the domain the adapter was trained on (``domains.py``);
indexes written before embeddings existed load with none.

Every change writes ``library.json`` to a temporary file and renames it over the old one (``os.replace``), under an
exclusive lock, so readers never see half an index and two processes of one user do not lose each other's
changes. A file is copied in under a name of its own digest before the index names it, so the index always points
at a complete file; a name that exists is replaced only with ``overwrite=True``.

:func:`load_library` puts every (or the named) adapter of a library on a model as named adapters, all or nothing.
"""
from __future__ import annotations  # the method ``list`` would shadow ``list[...]`` in later annotations

import dataclasses
import datetime
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from torch import nn

from ..atomic_write import write_atomic
from ..zoo.checks import file_sha256
from ..tuners import (BASE, backbone_fingerprint, delete_adapter, list_adapters, load_tuners, read_tuner_file,
                      save_tuners, set_adapter)
from ..tuners.attach import adapter_set

INDEX = 'library.json'
LOCK = '.library.lock'
FORMAT = 'petl_vision.library/1'
LOCK_TIMEOUT_S = 30.0
NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_\-]*')  # a name that can be a named adapter (pv.add_adapter's rule)
_STATISTICS = ('running_mean', 'running_var')  # normalisation statistics stored with a tuner: not trained


class LibraryError(ValueError):
    """A library that cannot do what was asked (no index, a name taken, an entry that does not fit the model)."""


@dataclasses.dataclass(frozen=True)
class LibraryEntry:
    """One adapter of a library, as ``library.json`` records it."""

    name: str
    file: str
    sha256: str
    backbone: dict[str, Any]
    plan: str
    trainable: int
    created: str
    task: str | None = None
    dataset: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    embedding: dict[str, Any] | None = None  # {'pool': 'cls'|'mean', 'images': N or None, 'vector': [C floats]}


class AdapterLibrary:
    """A directory of tuner files plus ``library.json``. Nothing is written until the first :meth:`add`."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.index_path = self.directory / INDEX

    # reading ------------------------------------------------------------------------------------------------------
    def list(self) -> list[LibraryEntry]:
        """Every entry, by name."""
        return list(self._read().values())

    def names(self) -> list[str]:
        return list(self._read())

    def get(self, name: str) -> LibraryEntry:
        return self.select([name])[0]

    def select(self, names: Sequence[str] | str | None = None) -> list[LibraryEntry]:
        """The entries named, once each, in the order given (all of them, by name, for ``None``); unknown names are
        one error naming them all."""
        return _select(self.directory, self._read(), names)

    def path_of(self, entry: LibraryEntry | str) -> Path:
        return self.directory / (self.get(entry) if isinstance(entry, str) else entry).file

    def verify(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Recompute each file's sha256: name -> ``'ok'``, ``'changed'`` (the bytes differ from the index) or
        ``'missing'``."""
        return {e.name: self.status(e) for e in self.select(names)}

    def status(self, entry: LibraryEntry) -> str:
        """``'ok'``, ``'changed'`` or ``'missing'``: the entry's file against the sha256 in the index."""
        path = self.directory / entry.file
        if not path.is_file():
            return 'missing'
        return 'ok' if file_sha256(path) == entry.sha256 else 'changed'

    def _read(self) -> dict[str, LibraryEntry]:
        if not self.index_path.is_file():
            raise LibraryError(f'{self.directory} is not an adapter library (no {INDEX}); create one by adding an '
                               f'adapter: python tools/adapters.py add {self.directory} FILE --name NAME')
        try:
            data = json.loads(self.index_path.read_text())
            if data.get('format') != FORMAT:
                raise ValueError(f'format {data.get("format")!r}, expected {FORMAT!r}')
            return {name: LibraryEntry(**fields) for name, fields in sorted(data['adapters'].items())}
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise LibraryError(f'{self.index_path} is not a readable adapter library index ({e}); restore it from a '
                               'backup or rebuild the library by adding its tuner files again') from e

    # changing -----------------------------------------------------------------------------------------------------
    def add(self, file: str | Path, name: str, task: str | None = None, dataset: str | None = None,
            metrics: dict[str, float] | None = None, overwrite: bool = False) -> LibraryEntry:
        """Copy the tuner file ``file`` (written by ``pv.save_tuners``) into the library as ``name``."""
        _check_fields(name, task, dataset, metrics)
        source = Path(file)
        if not source.is_file():
            raise FileNotFoundError(2, 'no such tuner file', str(source))
        meta, tensors = read_tuner_file(source)  # refuses anything but a readable, undamaged tuner file, by name
        _check_loadable_as_named(str(source), meta)
        with self._staging() as staged:
            shutil.copyfile(source, staged)
            fields = dict(task=task, dataset=dataset, metrics=dict(metrics or {}))
            return self._commit(staged, _entry(name, file_sha256(staged), meta, tensors, **fields), overwrite)

    def add_model(self, model: nn.Module, adapter: str, name: str, task: str | None = None,
                  dataset: str | None = None, metrics: dict[str, float] | None = None,
                  overwrite: bool = False) -> LibraryEntry:
        """Save the adapter ``adapter`` of ``model`` (the backbone) into the library as ``name``."""
        _check_fields(name, task, dataset, metrics)
        with self._staging() as staged:
            save_tuners(model, staged, adapter=adapter)
            meta, tensors = read_tuner_file(staged)
            _check_loadable_as_named(f'adapter {adapter!r} of the model', meta)
            fields = dict(task=task, dataset=dataset, metrics=dict(metrics or {}))
            return self._commit(staged, _entry(name, file_sha256(staged), meta, tensors, **fields), overwrite)

    def set_embedding(self, name: str, vector: Sequence[float], pool: str, images: int | None = None) -> LibraryEntry:
        """Record the domain embedding of adapter ``name`` (the mean frozen feature of its training domain's
        ``images`` images, ``pool`` 'cls' or 'mean'; see ``domains.embed_domain``), replacing any earlier one."""
        values = [float(v) for v in vector]
        if not values or not all(math.isfinite(v) for v in values):
            raise LibraryError(f'a domain embedding must be a non-empty list of finite numbers; got {len(values)} '
                               f'numbers for {name!r}, {sum(not math.isfinite(v) for v in values)} of them not finite')
        if pool not in ('cls', 'mean'):
            raise LibraryError(f"pool must be 'cls' or 'mean', got {pool!r}")
        with self._locked():
            index = self._read()
            entry = _select(self.directory, index, [name])[0]
            index[name] = dataclasses.replace(entry, embedding={'pool': pool, 'images': images, 'vector': values})
            self._write(index)
        return index[name]

    def remove(self, name: str) -> LibraryEntry:
        """Take ``name`` out of the index, then delete its file."""
        with self._locked():
            index = self._read()
            entry = _select(self.directory, index, [name])[0]
            del index[name]
            self._write(index)
        (self.directory / entry.file).unlink(missing_ok=True)
        return entry

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        """A temporary file path inside the library (same file system: the final rename is atomic)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.directory, prefix='.staging-') as tmp:
            yield Path(tmp) / 'tuners.safetensors'

    def _commit(self, staged: Path, entry: LibraryEntry, overwrite: bool) -> LibraryEntry:
        """Under the lock: refuse a taken name (unless ``overwrite``), move the file in, then write the index."""
        name = entry.name
        with self._locked():
            index = self._read() if self.index_path.is_file() else {}
            old = index.get(name)
            if old is not None and not overwrite:
                raise LibraryError(f'library {self.directory} already has an adapter named {name!r} (task '
                                   f'{old.task}, created {old.created}); pick another name, remove it first or '
                                   'pass overwrite=True (--overwrite)')
            staged.replace(self.directory / entry.file)
            index[name] = entry
            self._write(index)
        if old is not None and old.file != entry.file:
            (self.directory / old.file).unlink(missing_ok=True)
        return entry

    def _write(self, index: dict[str, LibraryEntry]) -> None:
        data = {'format': FORMAT, 'adapters': {n: dataclasses.asdict(index[n]) for n in sorted(index)}}
        write_atomic(self.index_path, (json.dumps(data, indent=2) + '\n').encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the library (``filelock``: an OS lock, released if the process dies; any platform)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory / LOCK
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S, poll_interval=0.05)
        except Timeout:
            raise LibraryError(f'library {self.directory} stayed locked for {LOCK_TIMEOUT_S:.0f} s ({lock_path}): '
                               'another process is changing it; retry when it has finished') from None
        try:
            yield
        finally:
            lock.release()


def load_library(model: nn.Module, directory: str | Path, names: Sequence[str] | None = None) -> nn.Module:
    """Put every adapter of the library in ``directory`` (or those in ``names``) on ``model`` (the backbone) as
    named adapters, each under its library name; returns ``model``.

    All or nothing: entries saved for another backbone, names the model already has, and files changed since they
    were added are all reported in one error and nothing is loaded; a file that still fails to load takes the
    adapters loaded before it off again. A model without adapters gets the first loaded one active (``set_adapter``
    chooses otherwise).
    """
    library = AdapterLibrary(directory)
    entries = library.select(names)
    problems = _problems(model, library, entries)
    if problems:
        raise LibraryError(f'nothing was loaded from {library.directory}: {"; ".join(problems)}')
    grads = {p: p.requires_grad for p in model.parameters()}
    routing, loaded = adapter_set(model), []
    active, weights = list(routing.active), routing.weights
    try:
        for entry in entries:
            load_tuners(model, library.path_of(entry), adapter=entry.name)
            loaded.append(entry.name)
    except Exception:
        _take_off(model, loaded, grads, (active, weights))
        raise
    return model


def _problems(model: nn.Module, library: AdapterLibrary, entries: list[LibraryEntry]) -> list[str]:
    """Why each entry cannot be loaded onto ``model`` (empty: all can)."""
    here, present, problems = backbone_fingerprint(model), set(list_adapters(model)), []
    for entry in entries:
        saved = entry.backbone
        if saved.get('digest') != here['digest']:
            problems.append(f'{entry.name!r} was saved for a {saved.get("class")} ({saved.get("num_params", 0):,} '
                            f'parameters, fingerprint {saved.get("digest")}) but the model is a {here["class"]} '
                            f'({here["num_params"]:,} parameters, fingerprint {here["digest"]}); leave it out '
                            '(names=...) or build the backbone it was made for')
        if entry.name in present:
            problems.append(f'the model already has an adapter named {entry.name!r}; delete_adapter(model, '
                            f'{entry.name!r}) first or leave it out (names=...)')
        status = library.status(entry)
        if status != 'ok':
            problems.append(f'the file of {entry.name!r} ({library.directory / entry.file}) is {status} since it '
                            'was added (python tools/adapters.py verify shows all); add it again')
    return problems


def _take_off(model: nn.Module, loaded: list[str], grads: dict[nn.Parameter, bool],
              routing: tuple[list[str], list[float] | None]) -> None:
    """Undo a partial load: the loaded adapters deleted, the flags and the active adapters (and weights) as before."""
    for name in reversed(loaded):
        delete_adapter(model, name)
    for p, flag in grads.items():
        p.requires_grad_(flag)
    active, weights = routing
    if active:
        set_adapter(model, active, weights)


def _select(directory: Path, index: dict[str, LibraryEntry], names: Sequence[str] | str | None) -> list[LibraryEntry]:
    if names is None:
        return list(index.values())
    names = list(dict.fromkeys([names] if isinstance(names, str) else names))
    unknown = [n for n in names if n not in index]
    if unknown:
        raise KeyError(f'library {directory} has no adapter named {", ".join(map(repr, unknown))}; it has: '
                       f'{", ".join(index) or "nothing"}')
    return [index[n] for n in names]


def _entry(name: str, digest: str, meta: dict[str, Any], tensors: dict[str, Any], **fields: Any) -> LibraryEntry:
    return LibraryEntry(name=name, file=f'{name}-{digest[:8]}.safetensors', sha256=digest, backbone=meta['backbone'],
                        plan=plan_summary(meta['plan']), trainable=stored_parameters(tensors), created=_now(),
                        **fields)


# helpers ----------------------------------------------------------------------------------------------------------
def plan_summary(plan: list[dict[str, Any]]) -> str:
    """One line per plan: ``LoRA blocks.*.attn.qkv rank=8 parts=q,v + LinearDelta head name=trained``."""
    parts = []
    for entry in plan:
        targets = entry.get('targets')
        words = [str(entry.get('type')), _short(targets) if targets is not None else 'default targets']
        words += [f'{k}={_short(v)}' for k, v in entry.items() if k not in ('type', 'targets')]
        parts.append(' '.join(words))
    return ' + '.join(parts) or 'empty plan'


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ','.join(map(str, value))
    return str(value)


def stored_parameters(tensors: dict[str, Any]) -> int:
    """Trained values in a tuner file: its floating-point tensors other than normalisation statistics."""
    return sum(t.numel() for k, t in tensors.items()
               if t.is_floating_point() and k.rsplit('.', 1)[-1] not in _STATISTICS)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')


def _check_fields(name: str, task: str | None, dataset: str | None, metrics: dict[str, float] | None) -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == BASE:
        raise LibraryError(f'adapter name {name!r} must start with a letter or _ and hold only letters, digits, _ and '
                           f'- (it becomes a named adapter; not {BASE!r}), e.g. cars_lora')
    for field, value in (('task', task), ('dataset', dataset)):
        if value is not None and not isinstance(value, str):
            raise LibraryError(f'{field} must be a string or None, got {type(value).__name__} {value!r}')
    for key, value in (metrics or {}).items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not isinstance(key, str) or not ok:
            raise LibraryError(f'metrics must map names to finite numbers (e.g. {{"top1": 0.93}}); got {key!r}: '
                               f'{value!r}')


def _check_loadable_as_named(what: str, meta: dict[str, Any]) -> None:
    """Library adapters load as named adapters, which hold trained backbone tensors as deltas; a file that trains
    them directly (BitFit, full fine-tuning, ``trainable=``) only loads as ``'default'``, so it cannot be one."""
    direct = [e['type'] for e in meta['plan'] if e.get('type') in ('BitFit', 'Full')]
    if meta['trainable'] or direct:
        raise LibraryError(f'{what} trains backbone tensors directly ({", ".join(direct) or "trainable="}'
                           f'{meta["trainable"] or ""}), so it can only load as the default adapter, not beside '
                           'others; train it as a named adapter (pv.add_adapter(model, name, plan, trainable=...): '
                           'BitFit and trainable layers become deltas) and add that')
