# LoRA on q and v (rank 8), shared by the tasks
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan='lora')
suite = dict(method='lora')
