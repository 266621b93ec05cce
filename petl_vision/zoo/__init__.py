"""Model zoo: named pretrained files with URLs and checksums, a verified resumable download cache, ``zoo://`` paths."""
from .download import (ChecksumMismatchError, IncompleteDownloadError, OfflineError, UnpinnedChecksumWarning,
                       ZooDownloadError, cache_dir, cache_path, download, verify)
from .scheme import SCHEME, load_from_zoo, resolve
from .table import ZOO, ZooEntry, get_entry, list_models

__all__ = ['ZOO', 'ZooEntry', 'get_entry', 'list_models', 'cache_dir', 'cache_path', 'download', 'verify', 'resolve',
           'SCHEME', 'load_from_zoo', 'ZooDownloadError', 'ChecksumMismatchError', 'IncompleteDownloadError',
           'OfflineError', 'UnpinnedChecksumWarning']
