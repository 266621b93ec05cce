"""The shipped demo backbones (``vit_digits_demo``, ``swin_digits_demo``) are timm models as soon as both
``petl_vision`` and ``timm`` are imported, in either order, without ``import petl_vision`` importing timm (2 s).

When timm is already imported, :func:`register_demo_models_with_timm` registers them at once; otherwise it waits
for timm's import (a ``sys.meta_path`` finder that runs once, on the top-level ``timm`` package) and registers them
right after it.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType


def _register() -> None:
    importlib.import_module('petl_vision.demo')  # its timm_model registers the two names


class _RegisterAfterExec(importlib.abc.Loader):
    """timm's own loader, registering the demo models once timm's ``__init__`` has run."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _register()

    def __getattr__(self, name: str):  # get_data, get_resource_reader, ... of the wrapped loader
        return getattr(self.loader, name)


class _TimmImportHook(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if name != 'timm':
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec('timm')  # the real finders, this hook removed
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def register_demo_models_with_timm() -> None:
    if 'timm' in sys.modules:
        _register()
    elif not any(isinstance(f, _TimmImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmImportHook())
