"""Training machinery on mmengine: optimizer construction, hooks, safe checkpoint loading."""
from .optim import TrainableOptimWrapperConstructor
from .tuner_checkpoint import TunerCheckpointHook

__all__ = ['TrainableOptimWrapperConstructor', 'TunerCheckpointHook']
