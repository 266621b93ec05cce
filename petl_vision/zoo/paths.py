"""Where the project keeps its zoo files (the Hugging Face cache is in :mod:`.hub`)."""
import os
from pathlib import Path


def cache_dir() -> Path:
    """``$PETL_VISION_CACHE``, default ``~/.cache/petl_vision``."""
    return Path(os.environ.get('PETL_VISION_CACHE') or '~/.cache/petl_vision').expanduser()
