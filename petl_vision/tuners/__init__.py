"""The U-Tuning core: tuners, the op wrapper, plans and presets, and the public API."""
from . import adapter, bypass, dapt, lora, prompts, selection, ssf  # noqa: F401  (register the tuners)
from . import hyper_adapter  # noqa: F401  (Hyperformer, Polyhistor, per-task adapters)
from . import prolad  # noqa: F401  (TA, TAN, PreClassifierAlignment: ProLAD / TSA few-shot adapters)
from . import point_prompts  # noqa: F401  (IDPT)
from .api import (
                  apply_tuners,
                  backbone_fingerprint,
                  count_parameters,
                  describe_tuners,
                  load_tuners,
                  merge_tuners,
                  read_tuner_file,
                  save_tuners,
                  set_tuners_enabled,
                  tuned_ops,
                  unmerge_tuners,
)
from .base import OpInfo, ParameterSelection, PromptTuner, Tuner
from .config import TunerConfig
from .context import current_context, tuner_context
from .presets import PRESETS, list_presets, register_preset
from .registry import TUNERS, get_tuner_cls, register_tuner
from .tuned_op import TunedOp

__all__ = [
                  'PRESETS',
                  'TUNERS',
                  'OpInfo',
                  'ParameterSelection',
                  'PromptTuner',
                  'TunedOp',
                  'Tuner',
                  'TunerConfig',
                  'apply_tuners',
                  'backbone_fingerprint',
                  'count_parameters',
                  'current_context',
                  'describe_tuners',
                  'get_tuner_cls',
                  'list_presets',
                  'load_tuners',
                  'merge_tuners',
                  'read_tuner_file',
                  'register_preset',
                  'register_tuner',
                  'save_tuners',
                  'set_tuners_enabled',
                  'tuned_ops',
                  'tuner_context',
                  'unmerge_tuners',
]
