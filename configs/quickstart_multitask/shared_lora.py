# One LoRA adapter shared by the four tasks (per-task heads).
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(plan='lora', adapters='shared')
suite = dict(method='shared LoRA', dataset='digits multi-task (4 hard domains)')
