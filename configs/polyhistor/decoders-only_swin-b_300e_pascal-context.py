# decoders only: the backbone frozen, one decoder per task trained.
_base_ = ['./_base_/pascal-context_swin-b.py']

model = dict(plan='linear')
