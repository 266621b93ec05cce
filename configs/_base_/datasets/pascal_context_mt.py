# PASCAL-Context multi-task (the ASTMT / MTI-Net / MTLoRA release PASCAL_MT.tgz, docs/dense_multitask.md):
# 4,998 train / 5,105 val images; semseg (21), human_parts (7), saliency, normals; 448 x 448 as MTLoRA.
_base_ = ['./dense_mt.py']
dataset_type = 'PascalContextMT'
data_root = 'data/PASCAL_MT'
dense_tasks = ('semseg', 'human_parts', 'sal', 'normals')
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, tasks=dense_tasks))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, tasks=dense_tasks))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, tasks=dense_tasks))
val_evaluator = dict(tasks=dense_tasks, num_classes=dict(semseg=21, human_parts=7))
test_evaluator = dict(tasks=dense_tasks, num_classes=dict(semseg=21, human_parts=7))
