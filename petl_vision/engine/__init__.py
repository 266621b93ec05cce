"""Training machinery on mmengine: optimizer construction, loops, hooks, distributed helpers, seeding, safe loading,
work dirs."""
from .distributed import AnyDeviceDDP, build_runner, check_train_cfg, init_distributed, mean_over_ranks
from .loops import ResumableEpochBasedTrainLoop
from .optim import TrainableOptimWrapperConstructor
from .safe_load import patch_mmengine_resume, safe_load, safe_torch_load
from .seeding import SeededDataset, SeededSampler, derive_seed, seed_everything, seeded
from .tuner_checkpoint import TunerCheckpointHook
from .work_dir import WorkDirInUse, resolve_start, run_files

__all__ = ['AnyDeviceDDP', 'ResumableEpochBasedTrainLoop', 'SeededDataset', 'SeededSampler',
           'TrainableOptimWrapperConstructor', 'TunerCheckpointHook', 'WorkDirInUse', 'build_runner',
           'check_train_cfg', 'derive_seed', 'init_distributed', 'mean_over_ranks', 'patch_mmengine_resume',
           'resolve_start', 'run_files', 'safe_load', 'safe_torch_load', 'seed_everything', 'seeded']
