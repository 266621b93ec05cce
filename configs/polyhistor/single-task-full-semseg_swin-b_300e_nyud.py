# single-task full fine-tuning on semseg: the baseline of delta_m (its results go into the single-task
# baselines file that MultiTaskDenseMetric(single_task_baselines=...) reads).
_base_ = ['./_base_/nyud_swin-b.py']

tasks = ('semseg',)
model = dict(tasks=tasks, plan='full', loss_weights=dict(_delete_=True, semseg=1.0))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
val_evaluator = dict(tasks=tasks)
test_evaluator = val_evaluator
suite = dict(single_task=True)  # a delta_m baseline in tools/run_benchmark_suite.py
