"""Training machinery on mmengine: optimizer construction, hooks, safe checkpoint loading."""
from .optim import TrainableOptimWrapperConstructor
from .safe_load import patch_mmengine_resume, safe_load, safe_torch_load
from .tuner_checkpoint import TunerCheckpointHook

__all__ = ['TrainableOptimWrapperConstructor', 'TunerCheckpointHook', 'patch_mmengine_resume', 'safe_load',
           'safe_torch_load']
