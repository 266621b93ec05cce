"""The U-Tuning core: tuners, the op wrapper, plans and presets, and the public API."""
from . import adapter, lora, prompts, selection, ssf  # noqa: F401  (register the tuners)
from .api import (apply_tuners, backbone_fingerprint, count_parameters, describe_tuners, load_tuners, merge_tuners,
                  read_tuner_file, save_tuners, set_tuners_enabled, tuned_ops, unmerge_tuners)
from .base import OpInfo, ParameterSelection, PromptTuner, Tuner
from .config import TunerConfig
from .context import current_context, tuner_context
from .presets import PRESETS, list_presets, register_preset
from .registry import TUNERS, get_tuner_cls, register_tuner
from .tuned_op import TunedOp

__all__ = ['apply_tuners', 'count_parameters', 'save_tuners', 'load_tuners', 'merge_tuners', 'unmerge_tuners',
           'set_tuners_enabled', 'tuned_ops', 'describe_tuners', 'read_tuner_file', 'backbone_fingerprint',
           'list_presets', 'register_preset', 'PRESETS', 'Tuner', 'PromptTuner', 'ParameterSelection', 'OpInfo',
           'TunerConfig', 'TunedOp', 'TUNERS', 'register_tuner', 'get_tuner_cls', 'tuner_context',
           'current_context']
