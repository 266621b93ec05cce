"""``TunerCheckpointHook``: a small tuner-only file next to every Runner checkpoint and for the best model."""
import contextlib
import json
from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel

from ..registry import HOOKS
from ..tuners import save_tuners


def _full_parameters(model: nn.Module) -> contextlib.AbstractContextManager:
    """Inside: an FSDP-sharded model's unsharded parameters on rank 0 (collective: every rank must enter).
    Other models hold full parameters already."""
    if isinstance(model, FullyShardedDataParallel):
        return FullyShardedDataParallel.summon_full_params(model, writeback=False, rank0_only=True,
                                                           offload_to_cpu=True)
    return contextlib.nullcontext()


@HOOKS.register_module()
class TunerCheckpointHook(Hook):
    """Writes ``tuners_<epoch|iter>.safetensors``, ``tuners_latest.safetensors`` and, when ``save_best``
    names a metric, ``tuners_best.safetensors`` (plus a ``.json`` with the metric) into the work dir.
    The files hold the trainable tensors (with the model's trainable parts outside the backbone, such as dense
    task decoders, as ``owner.*``), the plan and the run's config (metadata ``config``). Only the main
    process writes; under FSDP (FlexibleRunner) the shards are gathered first.
    """

    priority = 'LOW'

    def __init__(self, save_best: str | None = None, rule: str = 'greater'):
        if rule not in ('greater', 'less'):
            raise ValueError(f'rule must be "greater" or "less", got {rule!r}')
        self.save_best, self.rule, self.best = save_best, rule, None

    def _save(self, runner, *names: str) -> list[Path]:
        """Called on every rank that runs the hook; the main process writes the files."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        tuned = getattr(model, 'backbone', model)
        with _full_parameters(runner.model):
            if not is_main_process():
                return []
            return [save_tuners(tuned, Path(runner.work_dir) / name, extra={'config': runner.cfg.pretty_text},
                                owner=model) for name in names]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Called with the checkpoint about to be written (mmengine 0.10 has no hook after saving): by the main
        process under Runner, by every rank under FlexibleRunner. The tag follows the CheckpointHook's names."""
        meta = checkpoint.get('meta', {})
        by_epoch = next((h.by_epoch for h in runner.hooks if isinstance(h, CheckpointHook)), True)
        tag = f'epoch_{meta.get("epoch", runner.epoch)}' if by_epoch else f'iter_{meta.get("iter", runner.iter)}'
        self._save(runner, f'tuners_{tag}.safetensors', 'tuners_latest.safetensors')

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if not self.save_best or not metrics:
            return
        if self.save_best not in metrics:
            raise KeyError(f'TunerCheckpointHook(save_best={self.save_best!r}) but validation reported '
                           f'{sorted(metrics)}')
        value = float(metrics[self.save_best])  # every rank gets the same metrics
        better = self.best is None or (value > self.best if self.rule == 'greater' else value < self.best)
        if better:
            self.best = value
            for path in self._save(runner, 'tuners_best.safetensors'):
                path.with_suffix('.json').write_text(json.dumps({self.save_best: value, 'epoch': runner.epoch,
                                                                 'iter': runner.iter}))
