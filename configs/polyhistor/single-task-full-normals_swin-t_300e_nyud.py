# single-task full fine-tuning on normals: the baseline of delta_m (its results go into the single-task
# baselines file that MultiTaskDenseMetric(single_task_baselines=...) reads).
_base_ = ['./_base_/nyud_swin-t.py']

tasks = ('normals',)
model = dict(tasks=tasks, plan='full', loss_weights=dict(_delete_=True, normals=10.0))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
val_evaluator = dict(tasks=tasks)
test_evaluator = val_evaluator
# model selection by this task's own metric (the base selects by semseg mIoU, which this run lacks)
default_hooks = dict(checkpoint=dict(save_best='dense/normals/mean', rule='less'))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='dense/normals/mean', rule='less')]
suite = dict(single_task=True)  # a delta_m baseline in tools/run_benchmark_suite.py
