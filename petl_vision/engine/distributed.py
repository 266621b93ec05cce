"""Choosing the runner (DDP or a FlexibleRunner strategy such as FSDP), and what mmengine 0.10 needs to train
data-parallel on CPU (gloo) as well as on GPUs.

mmengine's ``init_dist('pytorch')`` always calls ``torch.cuda.set_device(LOCAL_RANK)`` and its ``Runner.wrap_model``
always passes ``device_ids=[LOCAL_RANK]`` to DDP; both fail without CUDA ("Found no NVIDIA driver", "device_ids ...
only work with ... GPU modules"). :func:`init_distributed` starts the process group itself on CPU-only hosts
(mmengine then skips its own start) and :class:`AnyDeviceDDP` drops ``device_ids`` for CPU modules. On GPUs both
do exactly what mmengine does.
"""
import datetime
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import all_reduce, get_world_size, init_dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import FlexibleRunner, Runner
from torch import nn


# mmengine's own registry: Runner.wrap_model looks wrappers up with the root registry's `get`, which does not
# search scoped child registries, so `model_wrapper_cfg=dict(type='AnyDeviceDDP')` works only from here
@MODEL_WRAPPERS.register_module()
class AnyDeviceDDP(MMDistributedDataParallel):
    """:class:`~mmengine.model.MMDistributedDataParallel` that also wraps a CPU module (``device_ids`` dropped).

    ``find_unused_parameters``: frozen parameters (``requires_grad=False``, the whole backbone under a tuner plan)
    are not tracked by DDP at all, so a frozen backbone never needs it. It is needed only when a *trainable*
    parameter can go without a gradient in an iteration (a tuner skipped by a router, a prompt pool, a head that is
    not used by the loss); DDP then stops at the second iteration naming the parameters, and
    ``model_wrapper_cfg=dict(type='AnyDeviceDDP', find_unused_parameters=True)`` fixes it at some speed cost.
    """

    def __init__(self, module: nn.Module, device_ids: list[int] | None = None, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def init_distributed(launcher: str, dist_cfg: dict | None = None) -> None:
    """Start the process group for ``launcher`` ('pytorch': torchrun's environment) as mmengine would, also on
    hosts without CUDA, where the backend must be ``gloo``. A no-op if it is already started."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    dist_cfg = dict(dist_cfg or {})
    if launcher != 'pytorch' or torch.cuda.is_available():
        init_dist(launcher, **dist_cfg)
        return
    backend = dist_cfg.pop('backend', 'nccl')
    if backend != 'gloo':
        raise RuntimeError(f"distributed backend {backend!r} needs CUDA GPUs and none is visible; to train on CPU "
                           "use gloo: --cfg-options env_cfg.dist_cfg.backend=gloo")
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch expects torchrun\'s environment; {missing} not set. Launch with '
                           '`torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch` '
                           '(or tools/dist_train.sh)')
    if 'timeout' in dist_cfg:
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(backend='gloo', **dist_cfg)


def mean_over_ranks(log_vars: dict | None) -> dict | None:
    """``log_vars`` (a train step's losses and other scalars) with each scalar replaced by its mean over the
    processes, in one all-reduce; unchanged in a single process. Every rank must call it with the same keys."""
    if not log_vars or get_world_size() == 1:
        return log_vars
    keys = [k for k, v in log_vars.items() if isinstance(v, (int, float)) or torch.is_tensor(v) and v.numel() == 1]
    values = torch.tensor([float(log_vars[k]) for k in keys], dtype=torch.float64)
    all_reduce(values, op='mean')
    return {**log_vars, **dict(zip(keys, values.tolist()))}


def check_train_cfg(cfg: Config) -> None:
    """Let ``train_cfg.type`` name the loop when the config also sets ``by_epoch`` (mmengine refuses both):
    ``by_epoch=True`` only chose mmengine's epoch loop and is dropped; ``by_epoch=False`` contradicts an
    epoch-based type and is refused with the fix."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'type' not in train_cfg or 'by_epoch' not in train_cfg:
        return
    if not train_cfg.by_epoch and 'Epoch' in str(train_cfg.type):
        raise ValueError(f'train_cfg has type={train_cfg.type!r} (epoch-based) and by_epoch=False; for iteration-'
                         "based training set train_cfg.type='IterBasedTrainLoop' with train_cfg.max_iters, else "
                         'drop by_epoch')
    train_cfg.pop('by_epoch')


def build_runner(cfg: Config) -> Runner | FlexibleRunner:
    """The runner ``tools/train.py`` uses for ``cfg``.

    - ``cfg.strategy`` set (e.g. ``dict(type='FSDPStrategy')``, DeepSpeed): mmengine's ``FlexibleRunner``, which
      hands wrapping, optimizer and checkpoints to the strategy; wrapper options then go in
      ``strategy.model_wrapper`` and a ``model_wrapper_cfg`` is refused. Without CUDA, FSDP shards on CPU
      (``model_wrapper.device_id='cpu'``, gloo): slow, for tests.
    - otherwise mmengine's ``Runner``; distributed runs wrap the model in :class:`AnyDeviceDDP` unless the config
      has a ``model_wrapper_cfg`` (a top-level ``find_unused_parameters`` is passed on, as mmengine does).

    For a distributed ``cfg.launcher`` the process group is started first (:func:`init_distributed`);
    ``train_cfg`` may name its loop ``type`` and keep a ``by_epoch=True`` (:func:`check_train_cfg`).
    """
    check_train_cfg(cfg)
    launcher = cfg.get('launcher') or 'none'
    if launcher != 'none':
        init_distributed(launcher, (cfg.get('env_cfg') or {}).get('dist_cfg'))
    if cfg.get('strategy'):
        if cfg.get('model_wrapper_cfg'):
            raise ValueError('the config has both `strategy` (FlexibleRunner) and `model_wrapper_cfg` (Runner); put '
                             "the wrapper's options in strategy=dict(..., model_wrapper=dict(...)) instead")
        if cfg.strategy.get('type') == 'FSDPStrategy' and not torch.cuda.is_available():
            # mmengine passes device_id=LOCAL_RANK, which FSDP reads as a CUDA device
            cfg.strategy.model_wrapper = {'device_id': 'cpu', **(cfg.strategy.get('model_wrapper') or {})}
        return FlexibleRunner.from_cfg(cfg)
    if launcher != 'none' and not cfg.get('model_wrapper_cfg'):
        cfg.model_wrapper_cfg = dict(type='AnyDeviceDDP',
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    return Runner.from_cfg(cfg)
