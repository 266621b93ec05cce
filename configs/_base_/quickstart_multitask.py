# The multi-task quick start: one frozen digits ViT (`vit_digits_demo`), four tasks with their own label spaces
# (digit 10-way, parity, "at least 5", loop count 3-way) on the four digits domains the backbone handles worst
# (rotated 60 and 90 degrees, inverted contrast, noisy; petl_vision/datasets/digits_multitask.py), mixed-task
# batches, one head per task. The configs of configs/quickstart_multitask/ differ only in the adapters.
# Recipe as the single-task quick start: AdamW 3e-3, wd 1e-4, batch 32, cosine, light affine jitter.
_base_ = ['./default_runtime.py']

tasks = dict(digit=10, parity=2, at_least_5=2, loops=3)
domains = ['rotated_60', 'rotated_90', 'inverted', 'noisy']
model = dict(type='MultiTaskClassifier', backbone=dict(model='vit_digits_demo', pretrained=True), tasks=tasks,
             plan='lora')
train_pipeline = [dict(type='RandomAffine', degrees=10, translate=0.1, scale=(0.9, 1.1)), dict(type='PackInputs')]
test_pipeline = [dict(type='PackInputs')]


def _tasks(split, pipeline):
    return dict(type='MultiTaskDataset', datasets=dict(
        digit=dict(type='DigitsMultiTask', task='digit', domain=domains, split=split, pipeline=pipeline),
        parity=dict(type='DigitsMultiTask', task='parity', domain=domains, split=split, pipeline=pipeline),
        at_least_5=dict(type='DigitsMultiTask', task='at_least_5', domain=domains, split=split, pipeline=pipeline),
        loops=dict(type='DigitsMultiTask', task='loops', domain=domains, split=split, pipeline=pipeline)))


train_dataloader = dict(batch_size=32, num_workers=0, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='TaskBalancedSampler', mode='balanced'),
                        dataset=_tasks('train', train_pipeline))
val_dataloader = dict(batch_size=100, num_workers=0, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False), dataset=_tasks('val', test_pipeline))
test_dataloader = dict(batch_size=100, num_workers=0, collate_fn=dict(type='default_collate'),
                       sampler=dict(type='DefaultSampler', shuffle=False), dataset=_tasks('test', test_pipeline))
val_evaluator = dict(type='MultiTaskAccuracy')
test_evaluator = val_evaluator

optim_wrapper = dict(constructor='TrainableOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, convert_to_iter_based=True)]
train_cfg = dict(type="ResumableEpochBasedTrainLoop", max_epochs=20, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best=None))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='mean/top1', rule='greater')]
log_processor = dict(by_epoch=True, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
