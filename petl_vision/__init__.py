"""petl_vision: parameter-efficient transfer learning for vision transformers (U-Tuning core + mmengine)."""
from . import backbones  # noqa: F401  (register the backbone descriptors with the core)
from .tuners import (active_adapters, add_adapter, delete_adapter, list_adapters, set_adapter)
from .tuners import (active_tuners, apply_tuners, count_parameters, current_context, describe_tuners, list_presets,
                     load_tuners, merge_tuners, register_tuner, remove_tuners, reset_tuners, save_tuners,
                     set_tuners_active, set_tuners_enabled, tuner_context, unmerge_tuners)
from .timm_registration import register_demo_models_with_timm as _register_demo_models
from .composition import adapter_soup, combine_adapters, greedy_mix, prune_adapter, select_adapters, sign_difference
from .composition.library import load_library
from .version import __version__

_register_demo_models()  # timm.create_model('vit_digits_demo' | 'swin_digits_demo'), once timm is imported

__all__ = ['__version__', 'apply_tuners', 'count_parameters', 'save_tuners', 'load_tuners', 'merge_tuners',
           'unmerge_tuners', 'set_tuners_enabled', 'list_presets', 'register_tuner', 'tuner_context',
           'current_context', 'describe_tuners', 'set_tuners_active', 'active_tuners', 'reset_tuners', 'remove_tuners',
           'add_adapter', 'delete_adapter', 'list_adapters', 'set_adapter', 'active_adapters', 'load_library',
           'combine_adapters', 'prune_adapter', 'adapter_soup', 'sign_difference', 'select_adapters', 'greedy_mix']
