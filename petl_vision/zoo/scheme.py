"""``zoo://NAME``: a zoo file as a checkpoint path for mmengine (``load_from``, ``init_cfg``,
``load_checkpoint``) and for :func:`resolve`. Loading goes through :func:`~petl_vision.engine.safe_load.safe_load`.
"""
from pathlib import Path
from typing import Any

from mmengine.runner import CheckpointLoader

from ..engine.safe_load import MapLocation, safe_load
from .download import download

SCHEME = 'zoo://'


def resolve(path: str) -> Path:
    """The local file behind ``zoo://NAME``, downloaded into the cache first when missing."""
    if not path.startswith(SCHEME):
        raise ValueError(f'{path!r} is not a zoo path; zoo paths look like {SCHEME}vit_base_patch16_224.in21k')
    return download(path.removeprefix(SCHEME))


@CheckpointLoader.register_scheme(prefixes=SCHEME)
def load_from_zoo(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine checkpoint loader of ``zoo://`` paths (named ``load_from_*`` as mmengine's log line expects)."""
    return safe_load(resolve(filename), map_location)
