# The quick start: the shipped digits ViT (`vit_digits_demo`, 0.69M parameters, pretrained on upright digits)
# tuned on the rotated held-out digits (20 shots per class; val 10, test 40 per class). CPU, no downloads.
# One recipe for every method (tools/make_demo_backbone.py's): AdamW, wd 1e-4, batch 32, 30 epochs, cosine,
# light affine jitter; head lr 3e-3; tuner lr 3e-3 (full fine-tuning: 1e-4 for the backbone, see full.py).
_base_ = ['./default_runtime.py']

model = dict(type='ImageClassifier', backbone=dict(model='vit_digits_demo', pretrained=True, num_classes=10),
             plan='linear', trainable=['head'])
train_pipeline = [dict(type='RandomAffine', degrees=10, translate=0.1, scale=(0.9, 1.1)),
                  dict(type='PackInputs')]
test_pipeline = [dict(type='PackInputs')]
# the one definition of the target split (train / val / test drawn from the same held-out digits):
# `--cfg-options data_split.seed=N` reaches every loader (tools/train.py), so they never disagree
data_split = dict(seed=0)
train_dataloader = dict(batch_size=32, num_workers=0, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type='DigitsShiftTarget', split='train', shots=20, **data_split,
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=100, num_workers=0, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='DigitsShiftTarget', split='val', **data_split, pipeline=test_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(type='DigitsShiftTarget', split='test', **data_split,
                                                    pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(constructor='TrainableOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
# the cosine runs to train_cfg.max_epochs (no `end` / `T_max`): `--cfg-options train_cfg.max_epochs=N` is the length
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, convert_to_iter_based=True)]
# resumes bit for bit, augmentation included (petl_vision/engine/loops.py)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=30, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     # every epoch (~3 MB, a few ms), so a killed run loses at most one; 2 kept, because mmengine
                     # deletes the oldest before writing the next
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best=None))
log_processor = dict(by_epoch=True, window_size=7)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
