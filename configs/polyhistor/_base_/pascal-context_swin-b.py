# swin-b on pascal-context: model, data, the 300-epoch schedule and the runtime, with the tasks of the dataset.
_base_ = ['../../_base_/models/swin-b-dense.py', '../../_base_/datasets/pascal_context_mt.py',
          '../../_base_/schedules/dense_adamw_300e.py', '../../_base_/default_runtime.py']

# loss weights of ASTMT / MTLoRA on PASCAL-Context
model = dict(tasks=('semseg', 'human_parts', 'sal', 'normals'), num_classes=dict(semseg=21, human_parts=7),
             loss_weights=dict(semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0))
# model selection on the validation split by semantic segmentation mIoU (delta_m needs single-task baselines)
default_hooks = dict(checkpoint=dict(interval=20, save_best='dense/semseg/mIoU', rule='greater'))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='dense/semseg/mIoU', rule='greater')]
