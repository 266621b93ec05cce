"""Checks that a dataset folder holds what a loader expects, failing with the layout and the command that makes it."""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence


def require_paths(dataset: str, data_root: str, paths: Sequence[str], layout: str, prepare: str) -> None:
    """Raise ``FileNotFoundError`` when one of ``paths`` (relative to ``data_root``) does not exist.

    Args:
        dataset: the dataset's name, shown first in the message.
        data_root: the folder the dataset was given.
        paths: files or folders the dataset reads, relative to ``data_root``.
        layout: the expected folder layout, one entry per line.
        prepare: the ``tools/prepare_data.py`` arguments that prepare or check the folder (without ``--root``).
    """
    missing = [p for p in paths if not osp.exists(osp.join(data_root, p))]
    if missing:
        raise FileNotFoundError(
            f"{dataset}: {', '.join(missing)} not found in data_root='{data_root}'. Expected layout:\n{layout}\n"
            f'Prepare it with `python tools/prepare_data.py {prepare} --root {data_root or "DIR"}` '
            '(see docs/datasets.md).')
