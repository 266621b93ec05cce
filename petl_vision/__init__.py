"""petl_vision: parameter-efficient transfer learning for vision transformers (U-Tuning core + mmengine)."""
from .tuners import (apply_tuners, count_parameters, current_context, describe_tuners, list_presets, load_tuners,
                     merge_tuners, register_tuner, save_tuners, set_tuners_enabled, tuner_context, unmerge_tuners)
from .version import __version__

__all__ = ['__version__', 'apply_tuners', 'count_parameters', 'save_tuners', 'load_tuners', 'merge_tuners',
           'unmerge_tuners', 'set_tuners_enabled', 'list_presets', 'register_tuner', 'tuner_context',
           'current_context', 'describe_tuners']
