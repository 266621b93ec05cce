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
_REFUSED_GLOBAL = re.compile(r'GLOBAL (\S+) was not an allowed global')
_UNPICKLER_REASON = re.compile(r'WeightsUnpickler error:\s*(.+?)\n')


def _unpickler_reason(error: pickle.UnpicklingError) -> str:
    """The unpickler's own message, without torch's advice to turn ``weights_only`` off."""
    reason = _UNPICKLER_REASON.search(str(error))
    return reason.group(1) if reason else str(error)


def _refused(path: Path, what: object) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'refusing to unpickle `{what}` from {path}; only weights and mmengine training state are allowed. '
        f'If you trust that type, allow-list exactly it with torch.serialization.add_safe_globals([{what}]) '
        'before loading; otherwise ask for a tensors-only file (a state dict or safetensors).')


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
            if isinstance(e.__context__, UnsafeCheckpointError):  # raised by _history_buffer_method
                raise _refused(path, e.__context__) from None
            refused = _REFUSED_GLOBAL.search(str(e))
            if refused:
                raise _refused(path, refused.group(1)) from None
            raise _corrupt(path, _unpickler_reason(e)) from e
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
