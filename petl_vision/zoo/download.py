"""Fetch zoo files into the cache: streamed with urllib, resumed with HTTP Range requests, checked by sha256.

A download writes ``<cache>/<file>.part`` and renames it to ``<cache>/<file>`` only when every byte arrived and the
checksum (where one is known) matches, so a file in the cache is always complete. ``PETL_VISION_CACHE`` moves
the cache (default ``~/.cache/petl_vision``); ``PETL_VISION_OFFLINE=1`` forbids network access.
"""
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from urllib.parse import urlparse

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .table import get_entry

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


class ZooDownloadError(RuntimeError):
    """A zoo file could not be fetched or verified."""


class ChecksumMismatchError(ZooDownloadError):
    """The file's sha256 differs from the expected one."""


class IncompleteDownloadError(ZooDownloadError):
    """The transfer stopped early; the ``.part`` file is kept and the next call resumes it."""


class OfflineError(ZooDownloadError, FileNotFoundError):
    """The file is not cached and the network is off or unreachable."""


class UnpinnedChecksumWarning(UserWarning):
    """A file was downloaded or verified without a published sha256 to compare with."""


def cache_dir() -> Path:
    """``$PETL_VISION_CACHE``, default ``~/.cache/petl_vision``."""
    return Path(os.environ.get('PETL_VISION_CACHE') or '~/.cache/petl_vision').expanduser()


def _is_offline() -> bool:
    return os.environ.get('PETL_VISION_OFFLINE', '') not in ('', '0')


def _source(name_or_url: str, sha256: str | None) -> tuple[str, str | None, Path]:
    """(url, expected sha256, cache path) of a zoo name (``zoo://`` optional) or a URL."""
    name = name_or_url.removeprefix('zoo://')
    if '://' not in name:
        entry = get_entry(name)
        return entry.url, sha256 or entry.sha256, cache_dir() / entry.filename
    # URLs of different files often share a basename (Hugging Face's model.safetensors): prefix a hash of the URL
    url_hash = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name, sha256, cache_dir() / f'{url_hash}-{Path(urlparse(name).path).name or "download"}'


def cache_path(name_or_url: str) -> Path:
    """Where ``name_or_url`` is (or will be) cached; nothing is downloaded."""
    return _source(name_or_url, None)[2]


def _file_sha256(path: Path) -> str:
    with path.open('rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def _warn_unpinned(path: Path, digest: str) -> None:
    warnings.warn(f'{path.name}: no published checksum; computed sha256 {digest}, pin it in the table '
                  '(petl_vision/zoo/table.py) or pass sha256=', UnpinnedChecksumWarning, stacklevel=3)


def _offline_error(path: Path, url: str, why: str) -> OfflineError:
    return OfflineError(f'{path.name} is not in the zoo cache and {why}. Download {url} on a machine with network '
                        f'and put it at {path} (or point PETL_VISION_CACHE at a directory that holds it).')


def _total_bytes(response: http.client.HTTPResponse, resumed: bool) -> int | None:
    """The full file size: from ``Content-Range`` for a resumed (206) response, else ``Content-Length``."""
    if resumed:
        match = re.search(r'/(\d+)$', response.headers.get('Content-Range', ''))
        return int(match.group(1)) if match else None
    length = response.headers.get('Content-Length')
    return int(length) if length else None


def _open(url: str, part: Path, path: Path) -> tuple[http.client.HTTPResponse, int]:
    """Open ``url`` asking for the bytes after ``part``; returns the response and the offset it starts at."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={'Range': f'bytes={start}-'} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the part file is not a prefix of what the server has: start over
            part.unlink()
            return _open(url, part, path)
        raise ZooDownloadError(f'{url} answered HTTP {e.code} {e.reason}; check the URL in the zoo table '
                               '(petl_vision/zoo/table.py) or that the file is still published there') from e
    except (urllib.error.URLError, OSError) as e:
        raise _offline_error(path, url, f'{url} cannot be reached ({getattr(e, "reason", e)})') from e
    resumed = start > 0 and response.status == 206  # a server that ignores Range sends the whole file (200)
    return response, start if resumed else 0


def _fetch(url: str, part: Path, path: Path, progress: bool) -> None:
    response, start = _open(url, part, path)
    columns = (TextColumn('{task.description}'), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with response, part.open('ab' if start else 'wb') as f, Progress(*columns, disable=not progress) as bar:
        total = _total_bytes(response, resumed=start > 0)
        task = bar.add_task(path.name, total=total, completed=start)
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (http.client.HTTPException, OSError) as e:
                raise _incomplete(url, part, total, repr(e)) from e
            if not chunk:
                break
            f.write(chunk)
            bar.advance(task, len(chunk))
    if total is not None and part.stat().st_size != total:
        raise _incomplete(url, part, total, 'the connection closed early')


def _incomplete(url: str, part: Path, total: int | None, why: str) -> IncompleteDownloadError:
    size = part.stat().st_size
    return IncompleteDownloadError(f'download of {url} stopped after {size} of {total or "?"} bytes ({why}); the '
                                   f'partial file is kept at {part}: run the same command again to resume it')


def download(name_or_url: str, sha256: str | None = None, progress: bool = True) -> Path:
    """The cached file of a zoo name (``zoo://`` optional) or URL, downloading it first when missing.

    ``sha256`` overrides the table's checksum. With a checksum, a mismatching download is deleted and raises
    :class:`ChecksumMismatchError`; without one, :class:`UnpinnedChecksumWarning` reports the computed value.
    A transfer cut short raises :class:`IncompleteDownloadError` and the next call resumes it;
    ``PETL_VISION_OFFLINE=1`` or an unreachable server raise :class:`OfflineError` naming where to put the file.
    """
    url, expected, path = _source(name_or_url, sha256)
    if path.is_file():
        return path
    if _is_offline():
        raise _offline_error(path, url, 'PETL_VISION_OFFLINE is set')
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f'{path.name}.part')
    _fetch(url, part, path, progress)
    digest = _file_sha256(part)
    if expected is not None and digest != expected:
        part.unlink()
        raise ChecksumMismatchError(f'{url}: sha256 mismatch: expected {expected}, got {digest}; the download was '
                                    'deleted. Retry; if it persists the file changed upstream: check its source '
                                    'and update the zoo table')
    part.replace(path)
    if expected is None:
        _warn_unpinned(path, digest)
    return path


def verify(name_or_url: str, sha256: str | None = None) -> str:
    """sha256 of the cached file, checked against ``sha256`` or the table's; raises when they differ."""
    _, expected, path = _source(name_or_url, sha256)
    if not path.is_file():
        raise FileNotFoundError(f'{path} is not downloaded; run python tools/zoo.py download {name_or_url}')
    digest = _file_sha256(path)
    if expected is None:
        _warn_unpinned(path, digest)
    elif digest != expected:
        raise ChecksumMismatchError(f'{path}: sha256 mismatch: expected {expected}, got {digest}; delete the file '
                                    f'and run python tools/zoo.py download {name_or_url}')
    return digest
