"""``AdapterLibraryHook``: at the end of a training run, put each task's adapter into an :class:`AdapterLibrary`,
with the run's last validation metrics and the embedding of the task's domain (``domains.py``).

For models with a named adapter per task and the heads apart (``MultiTaskClassifier``, also with one task): the
library gets the adapter alone (no head: adapters of tasks with different classes mix in weight space), so a
held-out task is served by a mixture of the others and a head of its own. The configs in ``configs/library/`` use
it; ``docs/mixing.md`` shows the held-out evaluation.
"""
from collections.abc import Iterator, Mapping
from itertools import islice

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import HOOKS
from ..tuners import tuned_network
from .domains import POOLS, embed_domain
from .library import AdapterLibrary


@HOOKS.register_module()
class AdapterLibraryHook(Hook):
    """Args:
        library: the library's directory (created if new).
        names: task -> library name (default: the task's name).
        dataset: recorded in each entry (e.g. ``'StanfordCars'``); task: recorded too (default ``'classification'``).
        embed_batches: batches of ``split`` holding the task whose mean frozen feature (``pool``) is its domain
            embedding; 0: none.
        split: ``'val'`` (default: the deterministic test pipeline) or ``'train'`` dataloader.
        overwrite: replace entries of the same name (a rerun); otherwise a taken name is an error.
    """

    priority = 'LOW'

    def __init__(self, library: str, names: Mapping[str, str] | None = None, dataset: str | None = None,
                 task: str = 'classification', embed_batches: int = 16, split: str = 'val', pool: str = 'cls',
                 overwrite: bool = False):
        if split not in ('val', 'train'):
            raise ValueError(f"split must be 'val' or 'train' (the dataloader whose images embed the domain), got "
                             f'{split!r}')
        if pool not in POOLS:
            raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
        self.library, self.names, self.dataset, self.task = library, dict(names or {}), dataset, task
        self.embed_batches, self.split, self.pool, self.overwrite = embed_batches, split, pool, overwrite
        self.metrics: dict[str, float] = {}

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        self.metrics = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}

    def after_train(self, runner) -> None:
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        tasks = list(getattr(model, 'tasks', None) or [])
        if not tasks or not getattr(model, 'routed', False):
            raise TypeError(f'AdapterLibraryHook needs a model with a named adapter per task and the heads apart '
                            f'(MultiTaskClassifier with adapters="per_task"), got {type(model).__name__}; see '
                            'configs/library/')
        backbone, library = tuned_network(model), AdapterLibrary(self.library)
        for task in tasks:
            name = self.names.get(task, task)
            library.add_model(backbone, task, name, task=self.task, dataset=self.dataset, metrics=self.metrics,
                              overwrite=self.overwrite)
            if self.embed_batches > 0:
                loader = runner.val_dataloader if self.split == 'val' else runner.train_dataloader
                embed_domain(library, backbone, name, _inputs(model, loader, task, self.embed_batches), self.pool)
            runner.logger.info(f'added adapter {task!r} to the library {library.directory} as {name!r}')


def _inputs(model, loader, task: str, batches: int) -> Iterator[torch.Tensor]:
    """The first ``batches`` preprocessed batches of ``loader`` that hold ``task``'s images, those images only (all
    of a batch for single-task data). Batches of other tasks do not count: a multi-task val loader runs task by
    task, so its first batches may hold only the first task."""
    return islice(_task_inputs(model, loader, task), batches)


def _task_inputs(model, loader, task: str) -> Iterator[torch.Tensor]:
    for batch in loader:
        names = batch.get('task') if isinstance(batch, dict) else None
        if names is not None and task not in names:
            continue
        inputs = model.data_preprocessor(batch, False)['inputs']  # (B, 3, H, W) normalised, on the model's device
        if names is not None:
            inputs = inputs[torch.tensor([t == task for t in names], device=inputs.device)]
        yield inputs
