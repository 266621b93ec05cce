"""mmengine registries of petl_vision (scope ``petl_vision``), used only at the config boundary.

Configs set ``default_scope='petl_vision'``; tuners are *not* registered here (see
:mod:`petl_vision.tuners.registry`), they are plain modules built from the model's ``plan``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='petl_vision', locations=['petl_vision.models'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='petl_vision', locations=['petl_vision.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS, scope='petl_vision',
                         locations=['petl_vision.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='petl_vision',
                      locations=['petl_vision.datasets'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='petl_vision', locations=['petl_vision.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, scope='petl_vision',
                     locations=['petl_vision.evaluation'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='petl_vision', locations=['petl_vision.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='petl_vision', locations=['petl_vision.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optim wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='petl_vision', locations=['petl_vision.engine'])
