# single-task full fine-tuning on semseg: a delta_m baseline (backbone lr 3e-4, decoder 3e-3, as mtl-full)
_base_ = ['../_base_/quickstart_dense.py']

tasks = ('semseg',)
model = dict(tasks=tasks, plan='full', loss_weights=dict(_delete_=True, semseg=1.0))
optim_wrapper = dict(optimizer=dict(lr=3e-4), paramwise_cfg=dict(custom_keys={'decoders': dict(lr_mult=10.0)}))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = dict(dataset=dict(tasks=tasks))
val_evaluator = dict(tasks=tasks)
test_evaluator = val_evaluator
custom_hooks = [dict(type='TunerCheckpointHook', save_best='dense/semseg/mIoU', rule='greater')]
suite = dict(method='single-task-semseg', single_task=True)
