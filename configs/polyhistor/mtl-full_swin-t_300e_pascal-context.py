# multi-task full fine-tuning: one shared backbone, all weights trained.
# Paper (Swin-T, PASCAL-Context): delta_m +2.23%, 30.06M.
_base_ = ['./_base_/pascal-context_swin-t.py']

model = dict(plan='full')
