# multi-task full fine-tuning: one shared backbone, all weights trained.
_base_ = ['./_base_/nyud_swin-b.py']

model = dict(plan='full')
