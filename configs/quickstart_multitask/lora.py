# One LoRA adapter per task (q and v of every qkv, rank 8), each sample routed through its task's adapter.
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(plan='lora', adapters='per_task')
suite = dict(method='per-task LoRA', dataset='digits multi-task (4 hard domains)')
