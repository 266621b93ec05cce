"""Import every module that registers into petl_vision's mmengine registries and set the default scope."""
import importlib

from mmengine.registry import DefaultScope

_MODULES = ('petl_vision.models', 'petl_vision.datasets', 'petl_vision.evaluation', 'petl_vision.engine')


def register_all_modules(init_default_scope: bool = True) -> None:
    for name in _MODULES:
        importlib.import_module(name)
    if init_default_scope and DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('petl_vision', scope_name='petl_vision')
