"""Single keys of the dataset bases: ``--cfg-options data_root=DIR img_size=S num_classes=C data_split.seed=N``.

mmengine substitutes a config's variables when the file is parsed, so overriding the top-level ``data_root`` later
changes nothing in the loaders that were written with it. :func:`merge_options` merges overrides the way
``Config.merge_from_dict`` does, but first carries each shared key given at the top level to every place the
dataset bases use it:

- ``data_root``: the ``data_root`` of every loader's dataset;
- ``img_size``: every image size in the loaders' pipelines, scaled by new / old ``img_size`` (FGVC's resize 256
  before a 224 crop becomes 128 before 112), a dataset's own ``img_size`` and the timm backbone's ``img_size``;
- ``num_classes``: the classification head, ``model.backbone.num_classes``;
- ``data_split``: the split definition (``val_size`` / ``seed`` / fractions) of every loader's dataset, so train
  and val are always carved the same way.

Overrides of a loader's own keys are merged afterwards and win. A loader with ``num_workers=0`` gets
``persistent_workers=False`` (torch refuses the pair).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mmengine.config import Config

SHARED_KEYS = ('data_root', 'img_size', 'num_classes', 'data_split')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# transform type -> its argument that is an output image size
SIZE_ARGS = {'Resize': 'size', 'RandomResizedCrop': 'size', 'RandomCrop': 'size', 'CenterCrop': 'size',
             'DenseResize': 'size', 'DenseRandomScaleCrop': 'crop_size', 'DensePad': 'size'}


def loader_datasets(cfg: Config) -> Iterator[dict]:
    """The dataset dicts of the config's loaders, looking through wrappers (``dataset=`` / ``datasets=[...]``)."""
    stack = [loader.get('dataset') for name in LOADERS if isinstance(loader := cfg.get(name), Mapping)]
    while stack:
        dataset = stack.pop()
        if not isinstance(dataset, Mapping):
            continue
        yield dataset
        stack.append(dataset.get('dataset'))
        stack.extend(dataset.get('datasets') or [])


def _set_in_datasets(cfg: Config, key: str, value: Any) -> None:
    for dataset in loader_datasets(cfg):
        if key in dataset:
            dataset[key] = value


def _scale(size: int | list[int] | tuple[int, ...], factor: float) -> int | list[int]:
    if isinstance(size, int):
        return round(size * factor)
    return [round(s * factor) for s in size]


def _apply_img_size(cfg: Config, old: Any, new: Any) -> None:
    if not isinstance(old, int) or not isinstance(new, int) or new < 1:
        raise ValueError(f'img_size must be a positive int (the base declares img_size={old!r}), got {new!r}')
    for dataset in loader_datasets(cfg):
        for transform in dataset.get('pipeline') or []:
            arg = SIZE_ARGS.get(transform.get('type')) if isinstance(transform, Mapping) else None
            if arg in transform:
                transform[arg] = _scale(transform[arg], new / old)
        if 'img_size' in dataset:
            dataset['img_size'] = new
    backbone = (cfg.get('model') or {}).get('backbone')
    if isinstance(backbone, Mapping) and 'model' in backbone:  # a timm backbone: position embeddings follow
        backbone['img_size'] = new


def _apply_num_classes(cfg: Config, value: Any) -> None:
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, Mapping) or 'num_classes' not in backbone:
        raise KeyError('num_classes: this config has no model.backbone.num_classes to set; override the head '
                       'of its model directly')
    backbone['num_classes'] = value


def _root(key: str) -> str:
    return key.split('.', 1)[0]


def merge_options(cfg: Config, options: Mapping[str, Any] | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg`` (in place, returned), carrying the shared keys as described above."""
    options = dict(options or {})
    shared = {k: v for k, v in options.items() if _root(k) in SHARED_KEYS}
    roots = {_root(k) for k in shared}
    undeclared = sorted(r for r in roots if r not in cfg)
    if undeclared:
        raise KeyError(f'{undeclared}: this config declares no such top-level key (its dataset base does not use '
                       f'it); set the loaders\' own keys instead, e.g. train_dataloader.dataset.<key>=...')
    old_size = cfg.get('img_size')
    cfg.merge_from_dict(shared)
    if 'data_root' in roots:
        _set_in_datasets(cfg, 'data_root', cfg.data_root)
    if 'data_split' in roots:
        for key, value in cfg.data_split.items():
            _set_in_datasets(cfg, key, value)
    if 'img_size' in roots:
        _apply_img_size(cfg, old_size, cfg.img_size)
    if 'num_classes' in roots:
        _apply_num_classes(cfg, cfg.num_classes)
    rest = {k: v for k, v in options.items() if k not in shared}
    if rest:
        cfg.merge_from_dict(rest)
    drop_idle_persistent_workers(cfg)
    return cfg


def drop_idle_persistent_workers(cfg: Config) -> None:
    """``persistent_workers=False`` for every loader without workers (torch raises on the pair)."""
    for name in LOADERS:
        loader = cfg.get(name)
        if isinstance(loader, Mapping) and not loader.get('num_workers') and loader.get('persistent_workers'):
            loader['persistent_workers'] = False
