"""The U-Tuning core: tuners, the op wrapper, plans and presets, and the public functions.

Modules named for what they do: :mod:`.attach` (plans onto models, all or nothing), :mod:`.activation` (which
tuners act, reset), :mod:`.merge` (fold into the weights and back), :mod:`.state` (tuner files),
:mod:`.descriptor` (what a backbone family tells tuners), :mod:`.placement`, :mod:`.carry` and
:mod:`.context` (conditioning values and the per-call scratch space).
"""
from . import adapter, bypass, dapt, delta, dense_delta, lora, prompts, selection, ssf  # noqa: F401  (register the tuners)
from . import hyper_adapter  # noqa: F401  (Hyperformer, Polyhistor, per-task adapters)
from . import prolad  # noqa: F401  (TA, TAN, PreClassifierAlignment: ProLAD / TSA few-shot adapters)
from . import point_prompts  # noqa: F401  (IDPT)
from . import pha  # noqa: F401  (PHA: prototype-based hyper-adapters)
from .activation import active_tuners, reset_tuners, set_tuners_active, set_tuners_enabled, tuner_names
from .attach import (active_adapters, add_adapter, adapter_parameters, apply_tuners, count_parameters, delete_adapter,
                     describe_tuners, list_adapters, remove_tuners, set_adapter, tuned_network, tuned_ops)
from .base import OpInfo, ParameterSelection, PromptTuner, Tuner
from .config import TunerConfig
from .context import current_context, tuner_context
from .descriptor import BackboneSpec, describe, register_descriptor
from .merge import merge_tuners, unmerge_tuners
from .placement import Placement
from .presets import PRESETS, list_presets, register_preset
from .registry import TUNERS, get_tuner_cls, register_tuner
from .routing import BASE
from .state import adapter_state, backbone_fingerprint, load_tuners, read_tuner_file, save_tuners
from .tuned_op import TunedOp

__all__ = [
    'BASE', 'PRESETS', 'TUNERS', 'BackboneSpec', 'active_adapters', 'add_adapter', 'adapter_parameters',
    'adapter_state', 'delete_adapter', 'list_adapters', 'set_adapter', 'OpInfo', 'ParameterSelection', 'Placement',
    'PromptTuner', 'TunedOp',
    'Tuner', 'TunerConfig', 'active_tuners', 'apply_tuners', 'backbone_fingerprint', 'count_parameters',
    'current_context', 'describe', 'describe_tuners', 'get_tuner_cls', 'list_presets', 'load_tuners', 'merge_tuners',
    'read_tuner_file', 'register_descriptor', 'register_preset', 'register_tuner', 'remove_tuners', 'reset_tuners',
    'save_tuners', 'set_tuners_active', 'set_tuners_enabled', 'tuned_network', 'tuned_ops', 'tuner_context',
    'tuner_names', 'unmerge_tuners',
]
