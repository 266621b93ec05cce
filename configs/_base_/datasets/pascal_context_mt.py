# PASCAL-Context multi-task (the ASTMT / MTI-Net / MTLoRA release PASCAL_MT.tgz, docs/dense_multitask.md):
# 4,998 train / 5,105 val images; semseg (21), human_parts (7), saliency, normals; 448 x 448 as MTLoRA.
dataset_type = 'PascalContextMT'
data_root = 'data/PASCAL_MT'
dense_tasks = ('semseg', 'human_parts', 'sal', 'normals')

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
val_evaluator = dict(type='MultiTaskDenseMetric', tasks=dense_tasks, num_classes=dict(semseg=21, human_parts=7))
test_evaluator = val_evaluator
