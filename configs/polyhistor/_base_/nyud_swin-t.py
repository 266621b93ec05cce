# swin-t on nyud: model, data, the 300-epoch schedule and the runtime, with the tasks of the dataset.
_base_ = ['../../_base_/models/swin-t-dense.py', '../../_base_/datasets/nyud_mt.py',
          '../../_base_/schedules/dense_adamw_300e.py', '../../_base_/default_runtime.py']

model = dict(tasks=('semseg', 'depth', 'normals'), num_classes=dict(semseg=40),
             loss_weights=dict(semseg=1.0, depth=1.0, normals=10.0))  # loss weights of MTI-Net / MTLoRA on NYUD-v2
# model selection on the validation split by semantic segmentation mIoU (delta_m needs single-task baselines)
default_hooks = dict(checkpoint=dict(interval=20, save_best='dense/semseg/mIoU', rule='greater'))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='dense/semseg/mIoU', rule='greater')]
