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
from ..tuners import save_tuners, tuned_network


def _full_parameters(model: nn.Module) -> contextlib.AbstractContextManager:
    """Inside: an FSDP-sharded model's unsharded parameters on rank 0 (collective: every rank must enter).
    Other models hold full parameters already."""
    if isinstance(model, FullyShardedDataParallel):
        return FullyShardedDataParallel.summon_full_params(model, writeback=False, rank0_only=True,
                                                           offload_to_cpu=True)
    return contextlib.nullcontext()


def _files(model: nn.Module, name: str) -> list[tuple[str, str | None, nn.Module]]:
    """(file name, adapter, owner) of each tuner file a checkpoint ``name`` means for ``model``: one file, or, for a
    model with an adapter per task (``tuner_files``), one per task with that task's head."""
    specs = getattr(model, 'tuner_files', None)
    return specs(name) if callable(specs) else [(name, None, model)]


@HOOKS.register_module()
class TunerCheckpointHook(Hook):
    """Writes ``tuners_<epoch|iter>_N.safetensors``, ``tuners_latest.safetensors`` and, when ``save_best``
    names a metric, ``tuners_best.safetensors`` (plus a ``.json`` with the metric) into the work dir.
    The files hold the trainable tensors (with the model's trainable parts outside the backbone, such as dense
    task decoders, as ``owner.*``), the plan and the run's config (metadata ``config``). Only the main
    process writes; under FSDP (FlexibleRunner) the shards are gathered first. A ``tuners_<epoch|iter>_N`` file
    lives as long as its Runner checkpoint: with ``CheckpointHook(max_keep_ckpts=K)`` the last K are kept.
    """

    priority = 'LOW'

    def __init__(self, save_best: str | None = None, rule: str = 'greater'):
        if rule not in ('greater', 'less'):
            raise ValueError(f'rule must be "greater" or "less", got {rule!r}')
        self.save_best, self.rule, self.best = save_best, rule, None
        self._config_text: str | None = None  # the run's config, formatted once (mmengine's pretty_text: ~0.1 s)

    def _save(self, runner, *names: str) -> list[Path]:
        """Called on every rank that runs the hook; the main process writes the files."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        tuned = tuned_network(model)
        with _full_parameters(runner.model):
            if not is_main_process():
                return []
            if self._config_text is None:
                self._config_text = runner.cfg.pretty_text
            return [save_tuners(tuned, Path(runner.work_dir) / file, extra={'config': self._config_text},
                                owner=owner, adapter=adapter)
                    for name in names for file, adapter, owner in _files(model, name)]

    def before_train(self, runner) -> None:
        """A resumed run (iteration > 0 after loading) continues the best score of its ``tuners_best.json``, so it
        replaces the best file only with a better one, also when the kill came after a validation the last
        checkpoint does not include."""
        record = Path(runner.work_dir) / 'tuners_best.json'
        if self.save_best and runner.iter > 0 and record.is_file():
            self.best = json.loads(record.read_text()).get(self.save_best)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Called with the checkpoint about to be written (mmengine 0.10 has no hook after saving): by the main
        process under Runner, by every rank under FlexibleRunner. The tag follows the CheckpointHook's names."""
        meta = checkpoint.get('meta', {})
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        by_epoch = hook.by_epoch if hook is not None else True
        prefix = 'epoch' if by_epoch else 'iter'
        step = meta.get(prefix, runner.epoch if by_epoch else runner.iter)
        self._save(runner, f'tuners_{prefix}_{step}.safetensors', 'tuners_latest.safetensors')
        if hook is not None and hook.max_keep_ckpts > 0 and is_main_process():
            self._prune(runner, prefix, {step, *runner.message_hub.get_info('keep_ckpt_ids', [])})

    @staticmethod
    def _prune(runner, prefix: str, kept_steps: set[int]) -> None:
        """Delete ``tuners_<prefix>_<step>`` files of the Runner checkpoints the CheckpointHook no longer keeps
        (its ``max_keep_ckpts``), this run's and an interrupted earlier part's; latest and best stay."""
        kept = {f'tuners_{prefix}_{step}.safetensors' for step in kept_steps}
        for path in Path(runner.work_dir).glob(f'tuners_{prefix}_*.safetensors'):
            if path.name not in kept:
                path.unlink(missing_ok=True)

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
