"""Optimizer construction that gives the optimizer only the trainable parameters."""
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor (``paramwise_cfg``: per-group lr/wd, ``custom_keys``, norm/bias decay
    multipliers) with frozen parameters removed from every group, so they get no optimizer state."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        wrapper = super().__call__(model)
        groups = []
        for group in wrapper.optimizer.param_groups:
            group['params'] = [p for p in group['params'] if p.requires_grad]
            if group['params']:
                groups.append(group)
        if not groups:
            raise ValueError('the model has no trainable parameters; check the plan and `trainable` in the model '
                             'config')
        wrapper.optimizer.param_groups = groups
        return wrapper
