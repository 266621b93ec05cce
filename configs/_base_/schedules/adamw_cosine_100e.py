# The PETL recipe of V-PETL Bench / NOAH / SSF: AdamW, 10 warm-up epochs, cosine to 100 epochs, batch 64.
# The cosine sets no `end` / `T_max`: it runs from its `begin` to train_cfg.max_epochs, the one key for the length.
optim_wrapper = dict(
    constructor='TrainableOptimWrapperConstructor',  # frozen parameters never reach the optimizer
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-8, by_epoch=True, begin=10, convert_to_iter_based=True),
]
# the resumable loop resumes bit for bit: mid-epoch, with augmentation (petl_vision/engine/loops.py)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
