"""``TunerCheckpointHook``: a small tuner-only file next to every Runner checkpoint and for the best model."""
import json
from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import HOOKS
from ..tuners import save_tuners


@HOOKS.register_module()
class TunerCheckpointHook(Hook):
    """Writes ``tuners_<epoch|iter>.safetensors``, ``tuners_latest.safetensors`` and, when ``save_best``
    names a metric, ``tuners_best.safetensors`` (plus a ``.json`` with the metric) into the work dir.
    The files hold the trainable tensors, the plan and the run's config (metadata ``config``).
    """

    priority = 'LOW'

    def __init__(self, save_best: str | None = None, rule: str = 'greater'):
        if rule not in ('greater', 'less'):
            raise ValueError(f'rule must be "greater" or "less", got {rule!r}')
        self.save_best, self.rule, self.best = save_best, rule, None

    def _save(self, runner, name: str) -> Path:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        tuned = getattr(model, 'backbone', model)
        return save_tuners(tuned, Path(runner.work_dir) / name, extra={'config': runner.cfg.pretty_text})

    def after_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not is_main_process():
            return
        tag = f'epoch_{runner.epoch}' if runner.train_loop.__class__.__name__ == 'EpochBasedTrainLoop' \
            else f'iter_{runner.iter}'
        self._save(runner, f'tuners_{tag}.safetensors')
        self._save(runner, 'tuners_latest.safetensors')

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if not self.save_best or not metrics or not is_main_process():
            return
        if self.save_best not in metrics:
            raise KeyError(f'TunerCheckpointHook(save_best={self.save_best!r}) but validation reported '
                           f'{sorted(metrics)}')
        value = float(metrics[self.save_best])
        better = self.best is None or (value > self.best if self.rule == 'greater' else value < self.best)
        if better:
            self.best = value
            path = self._save(runner, 'tuners_best.safetensors')
            path.with_suffix('.json').write_text(json.dumps({self.save_best: value, 'epoch': runner.epoch,
                                                             'iter': runner.iter}))
