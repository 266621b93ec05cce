# Multi-task dense schedule: 300 epochs (MTLoRA README: --epoch=300, batch 32), AdamW with linear warm-up and
# cosine decay. lr / wd / warm-up are the Swin codebase defaults MTLoRA inherits (BASE_LR 5e-4, WEIGHT_DECAY 0.05,
# WARMUP_EPOCHS 20, MIN_LR 5e-6; unverified against the Polyhistor paper, which publishes no code).
# The cosine sets no `end` / `T_max`: it runs from its `begin` to train_cfg.max_epochs, the one key for the length.
optim_wrapper = dict(
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-6, by_epoch=True, begin=20, convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=300, val_interval=20)  # exact resume
val_cfg = dict()
test_cfg = dict()
