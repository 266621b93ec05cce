"""A tiny, deterministic training config shared by the engine tests (resume, distributed, accumulation, FSDP).

A 2-block, 64-wide ViT on 32 px digits with LoRA on q/v and a trained head; no dropout or drop-path, so a run
depends only on the seed, the batches and the arithmetic. 64 training images (8 batches of 8 per epoch) and 45
validation images (odd, so 2 ranks cannot split them evenly).
"""
import uuid
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.runner import FlexibleRunner, Runner

from petl_vision import engine, setup_env


AUGMENT = dict(type='RandomAffine', degrees=15, translate=0.1, scale=(0.9, 1.1))  # the quick start's kind


def digits_loader(split: str, size: int, batch_size: int, shuffle: bool, augment: bool = False,
                  num_workers: int = 0) -> dict:
    return dict(batch_size=batch_size, num_workers=num_workers, persistent_workers=num_workers > 0,
                sampler=dict(type='DefaultSampler', shuffle=shuffle), collate_fn=dict(type='default_collate'),
                dataset=dict(type='SklearnDigits', split=split, img_size=32, indices=size,
                             pipeline=[AUGMENT, dict(type='PackInputs')] if augment else [dict(type='PackInputs')]))


def tiny_config(work_dir: str | Path, *, batch_size: int = 8, train_size: int = 64, val_size: int = 45,
                max_epochs: int = 2, checkpoint_every: int = 5, lr: float = 3e-3, augment: bool = False,
                num_workers: int = 0, **overrides) -> Config:
    """Epoch-based run (``ResumableEpochBasedTrainLoop``), a Runner checkpoint every ``checkpoint_every``
    iterations; ``augment``: random affine jitter of the training images, loaded by ``num_workers`` persistent
    workers; ``overrides`` replace top-level keys (``optim_wrapper``, ``train_cfg``, ``strategy``, ...)."""
    cfg = dict(
        default_scope='petl_vision',
        work_dir=str(work_dir),
        # unique: mmengine reuses the DefaultScope/MessageHub of an earlier Runner with the same name (by default
        # the start time in seconds), whatever its scope
        experiment_name=f'{Path(work_dir).name}_{uuid.uuid4().hex[:8]}',
        model=dict(type='ImageClassifier',
                   backbone=dict(model='vit_tiny_patch16_224', pretrained=None, img_size=32, patch_size=8,
                                 embed_dim=64, depth=2, num_heads=2, num_classes=10),
                   plan=[dict(type='LoRA', targets='blocks.*.attn.qkv', rank=4, parts=['q', 'v'])],
                   trainable=['head']),
        train_dataloader=digits_loader('train', train_size, batch_size, shuffle=True, augment=augment,
                                       num_workers=num_workers),
        val_dataloader=digits_loader('val', val_size, 16, shuffle=False),
        val_evaluator=dict(type='Accuracy', topk=(1,)),
        train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(constructor='TrainableOptimWrapperConstructor',
                           optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-2)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6),
                         dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=checkpoint_every, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0, deterministic=True),
        log_level='WARNING',
    )
    cfg.update(overrides)
    return Config(cfg)


def build_runner(cfg: Config) -> Runner | FlexibleRunner:
    """What tools/train.py does with a config: register petl_vision's modules, pick the runner."""
    setup_env.register_all_modules()
    return engine.build_runner(cfg)


def trainable_state(runner: Runner) -> dict[str, torch.Tensor]:
    """The trained tensors (tuners and head) of a runner's model, detached copies."""
    model = getattr(runner.model, 'module', runner.model)
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)
