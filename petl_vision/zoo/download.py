"""Fetch zoo files: hub-hosted entries through huggingface_hub (:mod:`.hub`), the others (and bare URLs) streamed
with urllib into the project's cache, resumed with HTTP Range requests, checked by sha256.

A urllib download writes ``<cache>/<file>.part`` and renames it to ``<cache>/<file>`` only when every byte of
``Content-Length`` arrived and the checksum matches, or, with no checksum, when the file is a complete archive
(:mod:`.checks`): a file in the cache is always whole. A cache hit is re-hashed whenever a checksum is known.
``PETL_VISION_CACHE`` moves the cache (default ``~/.cache/petl_vision``); ``PETL_VISION_OFFLINE=1`` forbids network
access. A hub entry the table leaves without a revision or sha256 is locked to those of its first download
(:mod:`.lock`, ``zoo.lock.json`` in that cache), and kept to them afterwards.
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

from .checks import archive_kind, file_sha256, incomplete_reason, normalise_sha256
from .errors import (ChecksumMismatchError, IncompleteDownloadError, LockMismatchError, OfflineError,
                     UnpinnedChecksumWarning, ZooDownloadError)
from .hub import hub_cached_path, hub_download, hub_repo_folder, hub_revision, hub_snapshot_commit
from .lock import LockRecord, lock_for, lock_path, needs_lock, with_lock, write_record
from .paths import cache_dir
from .table import ZooEntry, get_entry

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


def _is_offline() -> bool:
    return os.environ.get('PETL_VISION_OFFLINE', '') not in ('', '0')


def _entry(name_or_url: str) -> ZooEntry | None:
    name = name_or_url.removeprefix('zoo://')
    return None if '://' in name else get_entry(name)


def _source(name_or_url: str, sha256: str | None) -> tuple[str, str | None, Path]:
    """(url, expected sha256, cache path) of a zoo name (``zoo://`` optional) or a URL fetched with urllib."""
    sha256 = normalise_sha256(sha256, f'the sha256 given for {name_or_url}')
    entry = _entry(name_or_url)
    if entry is not None:
        return entry.url, sha256 or entry.sha256, cache_dir() / entry.filename
    # URLs of different files often share a basename (Hugging Face's model.safetensors): prefix a hash of the URL
    url_hash = hashlib.sha256(name_or_url.encode()).hexdigest()[:8]
    return name_or_url, sha256, cache_dir() / f'{url_hash}-{Path(urlparse(name_or_url).path).name or "download"}'


def cache_path(name_or_url: str) -> Path:
    """Where ``name_or_url`` is (or will be) cached; nothing is downloaded. A hub entry that is not cached yet
    gives the path its revision's (the table's, else the locked one, else ``main``) snapshot will have in the
    Hugging Face cache."""
    entry = _entry(name_or_url)
    if entry is None or entry.hub_repo is None:
        return _source(name_or_url, None)[2]
    entry = with_lock(entry, lock_for(entry))
    found = hub_cached_path(entry)
    if found is not None:
        return found
    snapshot = entry.revision or '<commit of main>'  # the hub cache names snapshots by commit, never by branch
    return hub_repo_folder(entry) / 'snapshots' / snapshot / entry.hub_file


def _warn_unpinned(path: Path, digest: str, locked: bool = False) -> None:
    done = f'locked in {lock_path()}; ' if locked else ''
    warnings.warn(f'{path.name}: no published checksum; computed sha256 {digest}, {done}pin it in the table '
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


def _mismatch(path: Path, expected: str, digest: str, name_or_url: str) -> ChecksumMismatchError:
    return ChecksumMismatchError(
        f'{path}: sha256 mismatch: expected {expected}, got {digest}; the file was kept. If {expected} is right, '
        f'delete the file and run python tools/zoo.py download {name_or_url}; if you passed it (--sha256 / sha256=), '
        'check the value.')


def _cached_ok(path: Path, expected: str | None, name_or_url: str) -> bool:
    """Check a cache hit: the digest when one is known (mismatch raises), else that the archive is whole
    (False: a cut file from an older, unchecked download, now deleted)."""
    if expected is not None:
        digest = file_sha256(path)
        if digest != expected:
            raise _mismatch(path, expected, digest, name_or_url)
        return True
    kind = archive_kind(path)
    reason = kind and incomplete_reason(path, kind, load_pickles=False)
    if reason:
        warnings.warn(f'{path} in the zoo cache is incomplete ({reason}); deleted, downloading it again',
                      UnpinnedChecksumWarning, stacklevel=3)
        path.unlink()
        return False
    return True


def _accept(part: Path, url: str, expected: str | None) -> str:
    """The sha256 of the finished ``part``; raises (deleting ``part`` unless it can be resumed) when the checksum
    differs or, with none, when the file is not a complete archive."""
    digest = file_sha256(part)
    if expected is not None:
        if digest != expected:
            part.unlink()
            raise ChecksumMismatchError(f'{url}: sha256 mismatch: expected {expected}, got {digest}; the download '
                                        'was deleted. Retry; if it persists the file changed upstream: check its '
                                        'source and update the zoo table')
        return digest
    kind = archive_kind(part)
    if kind is None:
        with part.open('rb') as f:
            head = f.read(16)
        part.unlink()
        raise ZooDownloadError(f'{url} sent a file that is neither a zip (torch.save), safetensors nor pickle archive '
                               f'(it starts with {head!r}) and no sha256 is pinned, so it cannot be checked and was '
                               'not cached; pass its published digest with sha256= / --sha256')
    reason = incomplete_reason(part, kind)
    if reason:
        raise IncompleteDownloadError(f'download of {url} is not a complete {kind} archive ({reason}); the partial '
                                      f'file is kept at {part}: run the same command again to resume it')
    return digest


def _revision_fix(entry: ZooEntry, record: LockRecord | None) -> str:
    if entry.revision is not None or record is None:
        return 'fix the revision in petl_vision/zoo/table.py'
    return (f'that is the commit it was locked to in {lock_path()} on {record.locked_at}, so the repo\'s history was '
            f'rewritten: check the repo, then run python tools/zoo.py unlock {entry.name} to lock what it holds now')


def _hub_mismatch(entry: ZooEntry, path: Path, expected: str, digest: str, record: LockRecord | None,
                  given: bool) -> ChecksumMismatchError:
    """The error of a hub file whose sha256 is not ``expected``; a lock that does not match says so."""
    where = f'{path} ({entry.hub_repo}/{entry.hub_file} at {hub_revision(entry)})'
    delete = (f'delete it from the Hugging Face cache (`hf cache rm model/{entry.hub_repo}` or remove {path} and the '
              'blob it links to) and download it again')
    if record is not None and not given and record.sha256 == expected:
        return LockMismatchError(
            f'{where}: sha256 {digest} is not the {expected} zoo entry {entry.name} was locked to in {lock_path()} '
            f'on {record.locked_at}; the lock was kept. If the cached file is damaged, {delete}. If the hub (or the '
            f'HF_ENDPOINT mirror) now serves another file, find out why before accepting it with '
            f'python tools/zoo.py unlock {entry.name}.')
    return ChecksumMismatchError(f'{where}: sha256 mismatch: expected {expected}, got {digest}. '
                                 f'{delete[0].upper()}{delete[1:]}.')


def _download_hub(entry: ZooEntry, sha256: str | None, progress: bool) -> Path:
    """A hub entry from the Hugging Face cache, at the table's revision, else the locked one, else ``main``; its
    sha256 checked on every call against ``sha256``, the table's, the locked one, or the one the hub reported (the
    blob's name). An entry the table does not fully pin is locked on its first download (:mod:`.lock`)."""
    given = normalise_sha256(sha256, f'the sha256 given for {entry.name}')
    record = lock_for(entry)
    pinned = with_lock(entry, record)
    path = hub_download(pinned, progress, _revision_fix(entry, record))
    reported = _hub_sha256(path)
    expected = given or pinned.sha256 or reported
    digest = file_sha256(path)
    if expected is not None and digest != expected:
        raise _hub_mismatch(pinned, path, expected, digest, record, given is not None)
    if needs_lock(entry) and record is None:
        write_record(entry, hub_snapshot_commit(entry, path), digest)
    if expected is None:
        _warn_unpinned(path, digest, locked=needs_lock(entry))
    return path


def _hub_sha256(path: Path) -> str | None:
    """The sha256 the hub reported for an LFS file: huggingface_hub names the blob after its ETag."""
    name = path.resolve().name
    return name if len(name) == 64 and all(c in '0123456789abcdef' for c in name) else None


def download(name_or_url: str, sha256: str | None = None, progress: bool = True) -> Path:
    """The local file of a zoo name (``zoo://`` optional) or URL, downloading it first when missing.

    ``sha256`` (any case) overrides the table's checksum and is checked on cache hits too. A mismatching
    download is deleted and raises :class:`ChecksumMismatchError`; a mismatching cache hit raises it and keeps the
    file. Without a checksum, only a complete archive is cached and :class:`UnpinnedChecksumWarning` reports the
    computed value. A transfer cut short raises :class:`IncompleteDownloadError` and the next call resumes it;
    offline mode or an unreachable server raise :class:`OfflineError` naming where to put the file. Hub entries
    go through :func:`.hub.hub_download` (the Hugging Face cache).
    """
    entry = _entry(name_or_url)
    if entry is not None and entry.hub_repo is not None:
        return _download_hub(entry, sha256, progress)
    url, expected, path = _source(name_or_url, sha256)
    if path.is_file() and _cached_ok(path, expected, name_or_url):
        return path
    if _is_offline():
        raise _offline_error(path, url, 'PETL_VISION_OFFLINE is set')
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f'{path.name}.part')
    _fetch(url, part, path, progress)
    digest = _accept(part, url, expected)
    part.replace(path)
    if expected is None:
        _warn_unpinned(path, digest)
    return path


def verify(name_or_url: str, sha256: str | None = None) -> str:
    """sha256 of the cached file, checked against ``sha256``, the table's, the lock's or (hub files) the hub's;
    raises when they differ. Nothing is downloaded and nothing is locked."""
    entry = _entry(name_or_url)
    if entry is not None and entry.hub_repo is not None:
        return _verify_hub(entry, normalise_sha256(sha256, f'the sha256 given for {entry.name}'))
    _, expected, path = _source(name_or_url, sha256)
    if not path.is_file():
        raise FileNotFoundError(f'{path} is not downloaded; run python tools/zoo.py download {name_or_url}')
    digest = file_sha256(path)
    if expected is None:
        _warn_unpinned(path, digest)
    elif digest != expected:
        raise ChecksumMismatchError(f'{path}: sha256 mismatch: expected {expected}, got {digest}; delete the file '
                                    f'and run python tools/zoo.py download {name_or_url}')
    return digest


def _verify_hub(entry: ZooEntry, given: str | None) -> str:
    record = lock_for(entry)
    pinned = with_lock(entry, record)
    path = hub_cached_path(pinned)
    if path is None:
        raise FileNotFoundError(f'{cache_path(entry.name)} is not downloaded; run python tools/zoo.py download '
                                f'{entry.name}')
    digest = file_sha256(path)
    expected = given or pinned.sha256 or _hub_sha256(path)
    if expected is None:
        _warn_unpinned(path, digest)
    elif digest != expected:
        raise _hub_mismatch(pinned, path, expected, digest, record, given is not None)
    return digest
