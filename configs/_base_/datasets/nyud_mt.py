# NYUD-v2 multi-task (the MTI-Net / MTLoRA release NYUD_MT.tgz, docs/dense_multitask.md):
# 795 train / 654 val images; semseg (40 classes), depth (metres), normals; 448 x 448.
dataset_type = 'NYUDMT'
data_root = 'data/NYUD_MT'
dense_tasks = ('semseg', 'depth', 'normals')

train_pipeline = [
    dict(type='DenseResize', size=448),
    dict(type='DenseRandomScaleCrop', crop_size=448, scale_range=(0.75, 1.25)),
    dict(type='DenseRandomHorizontalFlip', prob=0.5),
]
test_pipeline = [dict(type='DenseResize', size=448)]

train_dataloader = dict(
    batch_size=32,  # MTLoRA's README: --batch-size 32 on one GPU (per-GPU batch here: divide by the GPUs)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', tasks=dense_tasks, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', tasks=dense_tasks, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskDenseMetric', tasks=dense_tasks, num_classes=dict(semseg=40))
test_evaluator = val_evaluator
