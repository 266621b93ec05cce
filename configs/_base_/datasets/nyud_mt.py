# NYUD-v2 multi-task (the MTI-Net / MTLoRA release NYUD_MT.tgz, docs/dense_multitask.md):
# 795 train / 654 val images; semseg (40 classes), depth (metres), normals; 448 x 448.
_base_ = ['./dense_mt.py']
dataset_type = 'NYUDMT'
data_root = 'data/NYUD_MT'
dense_tasks = ('semseg', 'depth', 'normals')
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, tasks=dense_tasks))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, tasks=dense_tasks))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, tasks=dense_tasks))
val_evaluator = dict(tasks=dense_tasks, num_classes=dict(semseg=40))
test_evaluator = dict(tasks=dense_tasks, num_classes=dict(semseg=40))
