"""Training machinery on mmengine: optimizer construction, loops, hooks, distributed helpers, safe loading."""
from .distributed import AnyDeviceDDP, build_runner, init_distributed
from .loops import ResumableEpochBasedTrainLoop
from .optim import TrainableOptimWrapperConstructor
from .safe_load import patch_mmengine_resume, safe_load, safe_torch_load
from .tuner_checkpoint import TunerCheckpointHook

__all__ = ['AnyDeviceDDP', 'ResumableEpochBasedTrainLoop', 'TrainableOptimWrapperConstructor', 'TunerCheckpointHook',
           'build_runner', 'init_distributed', 'patch_mmengine_resume', 'safe_load', 'safe_torch_load']
