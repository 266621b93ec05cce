# single-task full fine-tuning on sal: a delta_m baseline (backbone lr 3e-4, decoder 3e-3, as mtl-full)
_base_ = ['../_base_/quickstart_dense.py']

tasks = ('sal',)
model = dict(tasks=tasks, plan='full', loss_weights=dict(_delete_=True, sal=5.0))
optim_wrapper = dict(optimizer=dict(lr=3e-4), paramwise_cfg=dict(custom_keys={'decoders': dict(lr_mult=10.0)}))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = dict(dataset=dict(tasks=tasks))
val_evaluator = dict(tasks=tasks)
test_evaluator = val_evaluator
custom_hooks = [dict(type='TunerCheckpointHook', save_best='dense/sal/mIoU', rule='greater')]
suite = dict(method='single-task-sal', single_task=True)
