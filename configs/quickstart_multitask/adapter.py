# One bottleneck adapter per task after every MLP (dim 8): VLM's one-adapter-per-task recipe, for vision.
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(plan='adapter', adapters='per_task')
suite = dict(method='per-task Adapter', dataset='digits multi-task (4 hard domains)')
