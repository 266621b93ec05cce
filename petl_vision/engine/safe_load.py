"""Load checkpoints without running arbitrary pickled code: ``torch.load(weights_only=True)`` plus an explicit
allow-list of what mmengine 0.10's training state pickles.

A Runner checkpoint (``iter_N.pth``) holds tensors and plain containers, except its ``message_hub``: log
histories are :class:`~mmengine.logging.history_buffer.HistoryBuffer` objects holding numpy arrays, the buffer's
statistics methods are pickled as ``getattr(HistoryBuffer, 'min')``, and runtime values (``eta``, metrics) are
numpy scalars. ``torch.serialization.get_unsafe_globals_in_checkpoint`` on such a checkpoint lists exactly
``HistoryBuffer``, ``numpy.ndarray``, ``numpy.dtype``, ``numpy._core.multiarray._reconstruct``,
``numpy._core.multiarray.scalar`` and ``builtins.getattr``; :data:`MMENGINE_SAFE_GLOBALS` allows those (numpy 1's
``numpy.core`` spellings too, so checkpoints written under numpy 1 load), the numeric numpy dtype classes that
``numpy.dtype`` objects are rebuilt as, and, in place of ``getattr``, :func:`_history_buffer_method`, which
returns public methods of ``HistoryBuffer`` and refuses everything else.

:func:`patch_mmengine_resume` makes mmengine's local-file checkpoint loader (used by ``load_from``, ``resume``
and :func:`mmengine.runner.load_checkpoint`) call :func:`safe_load`.
"""
import inspect
import pickle
import pickletools
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader
from safetensors.torch import load_file

MapLocation = str | torch.device | Callable | dict | None


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint pickles an object outside the allow-list; it was not loaded."""


class CorruptCheckpointError(RuntimeError):
    """The checkpoint file is truncated or not a checkpoint at all."""


def _history_buffer_method(owner: Any, name: str) -> Callable:
    """Stands in for ``builtins.getattr`` while unpickling: only ``HistoryBuffer``'s public methods."""
    method = inspect.getattr_static(owner, name, None) if owner is HistoryBuffer else None
    if name.startswith('_') or not inspect.isfunction(method):
        raise UnsafeCheckpointError(f'getattr({owner!r}, {name!r})')
    return method


def _numpy_globals() -> list:
    scalar, reconstruct = np.float32(0).__reduce__()[0], np.zeros(0).__reduce__()[0]
    numeric = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    allowed = [np.ndarray, np.dtype, *{type(np.dtype(code)) for code in numeric}]
    for core in ('numpy.core', 'numpy._core'):
        allowed += [(scalar, f'{core}.multiarray.scalar'), (reconstruct, f'{core}.multiarray._reconstruct')]
    return allowed


MMENGINE_SAFE_GLOBALS = [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), *_numpy_globals()]
_REFUSED_GLOBAL = re.compile(r'GLOBAL (\S+) (?:was not an allowed global|whose module \S+ is blocked)')
# what a weights-only load may reference at all; the unpickler then allows only specific names inside these
_WEIGHTS_MODULES = ('torch', 'collections', '_codecs', 'numpy', 'mmengine.logging.history_buffer')
# modules whose globals execute code or touch the system (torch blocks several of them outright)
_CODE_MODULES = {'os', 'posix', 'nt', 'subprocess', 'sys', 'builtins', 'shutil', 'socket', 'runpy', 'importlib',
                 'pickle', 'code', 'pty', 'webbrowser'}
_STRING_OPS = {'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE', 'SHORT_BINSTRING', 'BINSTRING', 'STRING'}


def _unpickler_message(error: pickle.UnpicklingError) -> str:
    """The weights-only unpickler's own message. torch wraps it in advice to turn weights-only loading off
    (which would run the pickled code); that advice is never repeated."""
    inner = error.__context__
    if isinstance(inner, pickle.UnpicklingError):
        return str(inner)
    return ' '.join(line for line in str(error).splitlines() if line.strip() and 'weights_only' not in line)


def _scan_globals(stream) -> list[str]:
    """``module.name`` of every GLOBAL / STACK_GLOBAL in the pickles of ``stream``, read without executing them."""
    found, strings, memo = [], [], {}
    try:
        while True:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in _STRING_OPS:
                    strings.append(arg)
                elif op.name in ('BINPUT', 'LONG_BINPUT', 'PUT', 'MEMOIZE'):
                    memo[len(memo) if arg is None else arg] = strings[-1] if strings else None
                elif op.name in ('BINGET', 'LONG_BINGET', 'GET'):
                    strings.append(memo.get(arg))
                elif op.name == 'GLOBAL':
                    found.append(arg.replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
    except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError, struct.error):
        return found  # the end of the pickles (a legacy file continues with raw storage bytes)


def _unsafe_globals(path: Path, is_zip: bool) -> list[str]:
    """Globals of the checkpoint outside what weights and mmengine training state need."""
    if is_zip:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    with path.open('rb') as f:
        names = _scan_globals(f)
    return sorted({n for n in names if not n.startswith(_WEIGHTS_MODULES) and n != 'builtins.getattr'})


def _load_error(path: Path, error: pickle.UnpicklingError, is_zip: bool) -> Exception:
    """:class:`UnsafeCheckpointError` naming what the file would import, else :class:`CorruptCheckpointError`."""
    if isinstance(error.__context__, UnsafeCheckpointError):  # raised by _history_buffer_method
        return _refused(path, error.__context__)
    message = _unpickler_message(error)
    refused = _REFUSED_GLOBAL.search(message)
    if refused:
        return _refused(path, refused.group(1))
    try:
        unsafe = _unsafe_globals(path, is_zip)
    except (RuntimeError, ValueError, OSError):  # not readable as a checkpoint at all
        unsafe = []
    return _refused(path, ', '.join(unsafe)) if unsafe else _corrupt(path, message)


def _refused(path: Path, what: object) -> UnsafeCheckpointError:
    if str(what).split('.')[0] in _CODE_MODULES:
        advice = (f'`{what}` runs arbitrary code: never allow-list it; get a tensors-only file (a state dict or '
                  'safetensors) from a source you trust.')
    else:
        advice = (f'If you trust that type, allow-list exactly it with torch.serialization.add_safe_globals([{what}]) '
                  'before loading; otherwise ask for a tensors-only file (a state dict or safetensors).')
    return UnsafeCheckpointError(f'unsafe checkpoint: refusing to unpickle `{what}` from {path}; only weights and '
                                 f'mmengine training state are allowed. {advice}')


def _corrupt(path: Path, reason: object) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f'checkpoint {path} is truncated or corrupt: {reason}; re-download it (zoo files: delete it and run '
        '`python tools/zoo.py download NAME`) or resume from an earlier checkpoint.')


def safe_torch_load(path: str | Path, map_location: MapLocation = 'cpu') -> Any:
    """``torch.load(path, map_location, weights_only=True)`` with :data:`MMENGINE_SAFE_GLOBALS` allowed.

    Raises :class:`UnsafeCheckpointError` naming the first refused object, :class:`CorruptCheckpointError` for
    truncated or non-checkpoint files, ``FileNotFoundError`` for missing ones.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist; check the path (load_from / resume_from)')
    with path.open('rb') as f:
        is_zip_header = f.read(4) == b'PK\x03\x04'
    if is_zip_header and not zipfile.is_zipfile(path):  # torch.save writes zip files; their directory is at the end
        raise _corrupt(path, 'the zip archive has no central directory (the file was cut short)')
    with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            raise _load_error(path, e, is_zip_header) from None
        except (EOFError, IndexError, RuntimeError, struct.error) as e:
            if is_zip_header:  # past the directory check, torch's zip reader says itself what is wrong
                raise
            raise _corrupt(path, f'{type(e).__name__}: {e}') from e  # legacy (pre-zip) format cut short


def safe_load(path: str | Path, map_location: MapLocation = 'cpu') -> Any:
    """Load a ``.safetensors`` file with safetensors, anything else with :func:`safe_torch_load`."""
    if Path(path).suffix != '.safetensors':
        return safe_torch_load(path, map_location)
    device = map_location if isinstance(map_location, (str, torch.device)) else 'cpu'
    return load_file(Path(path).expanduser(), device=str(device))


def load_from_local_safely(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine checkpoint loader for local paths (named ``load_from_*`` as mmengine's log line expects)."""
    return safe_load(filename, map_location)


def patch_mmengine_resume() -> None:
    """Route mmengine's local checkpoint loading (``load_from``, ``resume``, ``load_checkpoint``) through
    :func:`safe_load`. Idempotent; URLs and other schemes keep their loaders."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safely, force=True)
