"""A stage's adapter trained by mmengine's Runner (the project's engine), on the live model of a continual run.

The Runner gets objects, not configs: :class:`StageModel` (an mmengine ``BaseModel`` around the live backbone, which
already holds the earlier stages' adapters; ``forward(x, y, mode='loss')`` is the cross-entropy of the stage's
adapter with the logits outside the stage's classes masked), the stage's DataLoader (the same seeded shuffle as
the harness's own loop) and an ``OptimWrapper`` over that adapter's tensors only (AdamW). ``train_cfg`` is epoch
based (``recipe.epochs``), or iteration based when ``recipe.max_iters`` is set; ``randomness`` seeds the stage.
No checkpoint hook (the continual state is saved between stages by the harness); logs go to
``work_dir/stages/<adapter>_<stage>/``.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from torch import nn
from torch.nn import functional as F

import petl_vision as pv


class StageModel(BaseModel):
    """``backbone`` with ``adapter`` active; logits outside ``keep`` (C,) masked (None: every class)."""

    def __init__(self, backbone: nn.Module, adapter: str, keep: torch.Tensor | None) -> None:
        super().__init__()
        self.backbone, self.adapter, self.keep = backbone, adapter, keep

    def init_weights(self) -> None:
        """Keep every weight as it is (timm's init_weights would redraw the pretrained backbone)."""
        self._is_init = True

    def forward(self, inputs: torch.Tensor, data_samples: torch.Tensor | None = None, mode: str = 'tensor'):
        """``inputs`` (B, 3, H, W) normalised, ``data_samples`` (B,) labels of the whole classifier."""
        with pv.tuner_context(adapter=self.adapter):
            logits = self.backbone(inputs)  # (B, C)
        if self.keep is not None:
            logits = logits.masked_fill(~self.keep, float('-inf'))
        if mode == 'loss':
            return {'loss': F.cross_entropy(logits, data_samples)}
        if mode == 'tensor':
            return logits
        raise ValueError(f'StageModel trains only: mode must be "loss" or "tensor", got {mode!r}')


def train_stage_mmengine(model: nn.Module, adapter: str, loader: torch.utils.data.DataLoader, recipe, seed: int,
                         keep: torch.Tensor | None, work_dir: str | Path) -> float:
    """Train ``adapter`` of ``model`` on ``loader`` with mmengine's Runner; returns the last iteration's loss."""
    from mmengine.runner import Runner

    params = pv.tuners.adapter_parameters(model, adapter)
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.max_iters is not None:
        train_cfg = dict(by_epoch=False, max_iters=min(recipe.max_iters, recipe.epochs * len(loader)))
    else:
        train_cfg = dict(by_epoch=True, max_epochs=recipe.epochs)
    runner = Runner(model=StageModel(model, adapter, keep), work_dir=str(work_dir), train_dataloader=loader,
                    optim_wrapper=OptimWrapper(optimizer), train_cfg=train_cfg,
                    default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=10 ** 6)),
                    randomness=dict(seed=seed), log_level='WARNING', default_scope='petl_vision',
                    experiment_name=f'{Path(work_dir).name}_{time.strftime("%Y%m%d_%H%M%S")}_{seed}')
    runner.train()
    model.eval()
    return float(runner.message_hub.get_scalar('train/loss').current())
