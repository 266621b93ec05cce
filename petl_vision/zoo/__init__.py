"""Model zoo: named pretrained files with sources and checksums; hub files in the Hugging Face cache, others in a
verified resumable download cache; a lock file for what the table leaves unpinned; ``zoo://`` paths."""
from .download import cache_path, download, verify
from .errors import (ChecksumMismatchError, IncompleteDownloadError, LockMismatchError, OfflineError,
                     UnpinnedChecksumWarning, ZooDownloadError, ZooLockError)
from .hub import hub_cache_dir
from .lock import LockRecord, lock_for, lock_path, pin_source, read_lock, remove_record
from .paths import cache_dir
from .scheme import SCHEME, load_from_zoo, resolve
from .table import ZOO, ZooEntry, get_entry, list_models

__all__ = ['ZOO', 'ZooEntry', 'get_entry', 'list_models', 'cache_dir', 'cache_path', 'download', 'verify', 'resolve',
           'SCHEME', 'load_from_zoo', 'ZooDownloadError', 'ChecksumMismatchError', 'IncompleteDownloadError',
           'OfflineError', 'UnpinnedChecksumWarning', 'LockMismatchError', 'ZooLockError', 'hub_cache_dir',
           'LockRecord', 'lock_for', 'lock_path', 'pin_source', 'read_lock', 'remove_record']
