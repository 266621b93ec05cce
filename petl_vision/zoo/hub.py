"""Zoo entries hosted on the Hugging Face hub, fetched with ``huggingface_hub.hf_hub_download``.

The file lands in the Hugging Face cache that timm and transformers share (``$HF_HUB_CACHE``, else
``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), so weights a timm user already has are found, not downloaded
again. A commit-hash revision that is cached is served without any network access. ``HF_ENDPOINT`` (a mirror),
``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as for timm; the variables are read at each call, not at import.
"""
import os
import re
from pathlib import Path

from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)
from tqdm.auto import tqdm

from .errors import OfflineError, ZooDownloadError
from .table import ZooEntry

_TRUE = ('1', 'true', 'yes', 'on')


class _SilentBar(tqdm):
    def __init__(self, *args, **kwargs):
        kwargs['disable'] = True
        super().__init__(*args, **kwargs)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (huggingface_hub reads it at import)."""
    if os.environ.get('HF_HUB_CACHE'):
        return Path(os.environ['HF_HUB_CACHE']).expanduser()
    home = os.environ.get('HF_HOME') or Path(os.environ.get('XDG_CACHE_HOME') or '~/.cache') / 'huggingface'
    return Path(home).expanduser() / 'hub'


def hub_repo_folder(entry: ZooEntry) -> Path:
    """The cache folder of ``entry``'s repo: ``models--<owner>--<name>`` with ``blobs/``, ``snapshots/``, ``refs/``."""
    return hub_cache_dir() / f'models--{entry.hub_repo.replace("/", "--")}'


def hub_snapshot_commit(entry: ZooEntry, path: Path) -> str:
    """The commit of the snapshot folder ``path`` (a file ``hf_hub_download`` returned) lies in."""
    snapshots = hub_repo_folder(entry) / 'snapshots'
    parts = path.relative_to(snapshots).parts if path.is_relative_to(snapshots) else ()
    if not parts or not re.fullmatch(r'[0-9a-f]{40}', parts[0]):
        raise ZooDownloadError(f'{path} is not in a commit folder of {snapshots}, so the commit of {entry.hub_repo} '
                               f'it belongs to is unknown (zoo entry {entry.name})')
    return parts[0]


def hub_offline() -> bool:
    return any(os.environ.get(var, '').lower() in _TRUE for var in ('HF_HUB_OFFLINE', 'PETL_VISION_OFFLINE'))


def hub_revision(entry: ZooEntry) -> str:
    return entry.revision or 'main'


def hub_cached_path(entry: ZooEntry) -> Path | None:
    """The cached file of ``entry``'s revision, None when it is not in the cache; no network access."""
    found = try_to_load_from_cache(entry.hub_repo, entry.hub_file, cache_dir=hub_cache_dir(),
                                   revision=hub_revision(entry))
    return Path(found) if isinstance(found, str) else None


def hub_fetch_command(entry: ZooEntry) -> str:
    return f'hf download {entry.hub_repo} {entry.hub_file} --revision {hub_revision(entry)}'


def _offline_error(entry: ZooEntry, why: str) -> OfflineError:
    folder = hub_repo_folder(entry)
    return OfflineError(
        f'{entry.hub_file} of the Hugging Face repo {entry.hub_repo} (revision {hub_revision(entry)}, zoo name '
        f'{entry.name}) is not in the Hugging Face cache {hub_cache_dir()} and {why}. On a machine with network run '
        f'`{hub_fetch_command(entry)}` (`huggingface-cli download` with the same arguments before huggingface_hub '
        f'1.0), then copy its cache folder {folder.name} into {hub_cache_dir()} here (or point HF_HOME / '
        'HF_HUB_CACHE at a copy of that cache).')


_TABLE_FIX = 'fix the revision in petl_vision/zoo/table.py'


def hub_download(entry: ZooEntry, progress: bool = True, revision_fix: str = _TABLE_FIX) -> Path:
    """The local file of hub-hosted ``entry``, downloaded into the Hugging Face cache when missing.
    ``revision_fix`` says what to do when the hub has no such revision (it depends on where the revision is from)."""
    offline = hub_offline()
    try:
        return Path(hf_hub_download(entry.hub_repo, entry.hub_file, revision=hub_revision(entry),
                                    cache_dir=hub_cache_dir(), endpoint=os.environ.get('HF_ENDPOINT') or None,
                                    local_files_only=offline, tqdm_class=None if progress else _SilentBar))
    except RevisionNotFoundError as e:
        raise ZooDownloadError(f'the Hugging Face repo {entry.hub_repo} has no revision {hub_revision(entry)} '
                               f'(zoo entry {entry.name}); {revision_fix}') from e
    except EntryNotFoundError as e:
        if isinstance(e, LocalEntryNotFoundError):
            why = 'offline mode is on (HF_HUB_OFFLINE or PETL_VISION_OFFLINE)' if offline else \
                f'the hub ({os.environ.get("HF_ENDPOINT") or "https://huggingface.co"}) cannot be reached'
            raise _offline_error(entry, why) from e
        raise ZooDownloadError(f'revision {hub_revision(entry)} of the Hugging Face repo {entry.hub_repo} has no '
                               f'file {entry.hub_file} (zoo entry {entry.name}); fix petl_vision/zoo/table.py') from e
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise ZooDownloadError(f'the Hugging Face repo {entry.hub_repo} is missing or needs a login (zoo entry '
                               f'{entry.name}): check the name, or run `hf auth login` / set HF_TOKEN') from e
    except HfHubHTTPError as e:
        raise ZooDownloadError(f'the Hugging Face hub refused {entry.hub_repo}/{entry.hub_file}: {e}') from e
