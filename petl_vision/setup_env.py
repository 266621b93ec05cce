"""Import every module that registers into petl_vision's mmengine registries and set the default scope."""
import importlib

from mmengine.registry import DefaultScope

_MODULES = ('petl_vision.demo', 'petl_vision.models', 'petl_vision.datasets', 'petl_vision.evaluation',
            'petl_vision.engine', 'petl_vision.zoo')


def register_all_modules(init_default_scope: bool = True) -> None:
    """Also makes every mmengine checkpoint load (``load_from``, resume, ``zoo://``) use the safe loader."""
    from .engine.safe_load import patch_mmengine_resume

    for name in _MODULES:
        importlib.import_module(name)
    patch_mmengine_resume()
    if init_default_scope and DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('petl_vision', scope_name='petl_vision')
