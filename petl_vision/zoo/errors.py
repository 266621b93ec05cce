"""Errors of the zoo: what went wrong with a file, and what to do about it."""


class ZooDownloadError(RuntimeError):
    """A zoo file could not be fetched or verified."""


class ChecksumMismatchError(ZooDownloadError):
    """The file's sha256 differs from the expected one."""


class IncompleteDownloadError(ZooDownloadError):
    """The transfer stopped early or the file is cut short; a ``.part`` file kept is resumed by the next call."""


class OfflineError(ZooDownloadError, FileNotFoundError):
    """The file is not cached and the network is off or unreachable."""


class UnpinnedChecksumWarning(UserWarning):
    """A file was downloaded or verified without a published sha256 to compare with."""


class ZooLockError(ZooDownloadError):
    """The zoo lock file cannot be read or updated; it is left as it was."""


class LockMismatchError(ChecksumMismatchError):
    """The hub's file is not the one the zoo lock recorded for this entry."""
