# The loaders shared by nyud_mt.py and pascal_context_mt.py, which set each loader's dataset type, root and tasks
# and the metric's tasks and class counts. MTLoRA's recipe: 448 x 448, random scale crop and flip.
# Single keys (tools/train.py carries them to every loader and the backbone): data_root=DIR img_size=S.
img_size = 448
train_pipeline = [
    dict(type='DenseResize', size=img_size),
    dict(type='DenseRandomScaleCrop', crop_size=img_size, scale_range=(0.75, 1.25)),
    dict(type='DenseRandomHorizontalFlip', prob=0.5),
]
test_pipeline = [dict(type='DenseResize', size=img_size)]

train_dataloader = dict(
    batch_size=32,  # MTLoRA's README: --batch-size 32 on one GPU (per-GPU batch here: divide by the GPUs)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(split='val', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskDenseMetric')
test_evaluator = val_evaluator
