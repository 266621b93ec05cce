# LoRA rank 8 on q and v of every attention (shared by the tasks).
# Paper (Swin-T, PASCAL-Context): delta_m -2.17%, 2.87M.
_base_ = ['./_base_/pascal-context_swin-t.py']

model = dict(plan='lora')
