# LoRA rank 8 on q and v of every attention (shared by the tasks).
_base_ = ['./_base_/nyud_swin-t.py']

model = dict(plan='lora')
