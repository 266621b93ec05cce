"""Checks of a zoo file before it is cached or served: its sha256, and, without one, that the archive is whole.

A file with no pinned sha256 must at least be a complete archive: a zip (what ``torch.save`` writes) with its
central directory, a safetensors file whose size is exactly what its header describes, or a legacy torch pickle
that loads. Anything else cannot be checked, so it is not cached.
"""
import hashlib
import json
import re
import struct
import zipfile
from pathlib import Path
from typing import Literal

from ..engine.safe_load import CorruptCheckpointError, UnsafeCheckpointError, safe_torch_load

Kind = Literal['zip', 'safetensors', 'pickle']
_SAFETENSORS_MAX_HEADER = 100 << 20  # the safetensors format caps its JSON header at 100 MB


def normalise_sha256(digest: str | None, what: str) -> str | None:
    """``digest`` in lower case (hex is case-insensitive); anything but 64 hex digits raises ``ValueError``."""
    if digest is None:
        return None
    if not re.fullmatch(r'[0-9a-fA-F]{64}', digest.strip()):
        raise ValueError(f'{what}: sha256 must be 64 hex digits, got {digest!r}')
    return digest.strip().lower()


def file_sha256(path: Path) -> str:
    with path.open('rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def archive_kind(path: Path) -> Kind | None:
    """The format of ``path`` from its first bytes, None when it is none of the three."""
    with path.open('rb') as f:
        head = f.read(9)
    if head.startswith(b'PK\x03\x04'):
        return 'zip'
    if len(head) == 9 and head[8:9] == b'{':  # u64 header length, then the JSON header
        return 'safetensors'
    if head.startswith(b'\x80'):  # pickle PROTO opcode: torch's legacy format
        return 'pickle'
    return None


def incomplete_reason(path: Path, kind: Kind, load_pickles: bool = True) -> str | None:
    """Why the archive at ``path`` is not whole, None when it is. ``load_pickles=False`` skips the (slow) load
    that is the only completeness check of a legacy pickle."""
    if kind == 'zip':
        return None if zipfile.is_zipfile(path) else 'the zip archive has no central directory (it was cut short)'
    if kind == 'safetensors':
        return _safetensors_reason(path)
    if not load_pickles:
        return None
    try:
        safe_torch_load(path)
    except CorruptCheckpointError as e:
        return str(e)
    except UnsafeCheckpointError:  # whole, but refused: loading it says so
        return None
    return None


def _safetensors_reason(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open('rb') as f:
        (header_len,) = struct.unpack('<Q', f.read(8))
        if header_len > min(size - 8, _SAFETENSORS_MAX_HEADER):
            return f'its header claims {header_len} bytes but the file has {size}'
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return f'its header is not valid JSON ({e})'
    try:
        ends = [int(v['data_offsets'][1]) for k, v in header.items() if k != '__metadata__']
    except (KeyError, TypeError, IndexError, ValueError, AttributeError):
        return 'its header does not list data_offsets for every tensor'
    expected = 8 + header_len + max(ends, default=0)
    return None if expected == size else f'its header describes {expected} bytes but the file has {size}'
