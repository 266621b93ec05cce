# The dense quick start: the shipped digits Swin (`swin_digits_demo`, 0.80M parameters, pretrained on upright digit
# classification) with one decoder per task for four dense tasks on the rotated held-out digits (DigitsDenseMT:
# semseg 11 classes, saliency, normals and depth of a relief embossed per digit; 20 images per class for training,
# val 10 and test 40 per class). CPU, no downloads; `python tools/run_benchmark_suite.py configs/quickstart_dense`.
# One recipe for every method: AdamW, wd 1e-4, batch 20, 15 epochs, cosine, lr 3e-3 (full fine-tuning: 3e-4 for
# the backbone, see mtl-full.py); model selection on val semseg mIoU, each method's test metrics reported.
_base_ = ['./default_runtime.py']

tasks = ('semseg', 'sal', 'normals', 'depth')
model = dict(type='MultiTaskDenseModel', backbone=dict(model='swin_digits_demo', pretrained=True),
             tasks=tasks, num_classes=dict(semseg=11), plan='linear',
             decoder=dict(type='MultiScaleHead', channels=(12, 24, 48, 96), expand=2),
             loss_weights=dict(semseg=1.0, sal=5.0, normals=10.0, depth=1.0))  # PASCAL-Context's weights, depth 1
train_dataloader = dict(batch_size=20, num_workers=0, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type='DigitsDenseMT', split='train', tasks=tasks, shots=20, seed=0, pipeline=[]))
val_dataloader = dict(batch_size=100, num_workers=0, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='DigitsDenseMT', split='val', tasks=tasks, seed=0, pipeline=[]))
test_dataloader = dict(val_dataloader, dataset=dict(type='DigitsDenseMT', split='test', tasks=tasks, pipeline=[]))
val_evaluator = dict(type='MultiTaskDenseMetric', tasks=tasks, num_classes=dict(semseg=11))
test_evaluator = val_evaluator

optim_wrapper = dict(constructor='TrainableOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
# the cosine runs to train_cfg.max_epochs (no `end` / `T_max`): `--cfg-options train_cfg.max_epochs=N` is the length
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, convert_to_iter_based=True)]
# resumes bit for bit, augmentation included (petl_vision/engine/loops.py)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=15, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     # every epoch, so a killed run loses at most one; 2 kept (mmengine deletes before it writes)
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best=None))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='dense/semseg/mIoU', rule='greater')]
log_processor = dict(by_epoch=True, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
suite = dict(dataset='digits dense (rotated, 20-shot)')
