# The point-cloud PETL recipe of Point-MAE / IDPT / DAPT: AdamW lr 5e-4, weight decay 0.05, 10 warm-up epochs from
# 1e-6, cosine to 1e-6 at 300 epochs (stepped per epoch), batch 32, gradient norm clipped at 10, validation every
# epoch. Their optimizer exempts 1-D tensors, biases and tokens from weight decay (flat/bias mults, custom key).
# The cosine sets no `end` / `T_max`: it runs from its `begin` to train_cfg.max_epochs, the one key for the length.
optim_wrapper = dict(
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'cls_token': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 5e-4, by_epoch=True, begin=0, end=10),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=10),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=300, val_interval=1)  # exact resume
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)
