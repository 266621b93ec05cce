# decoders only: the backbone frozen, one decoder per task trained.
_base_ = ['./_base_/nyud_swin-b.py']

model = dict(plan='linear')
