# BitFit: every bias of the shared backbone.
_base_ = ['./_base_/pascal-context_swin-b.py']

model = dict(plan='bitfit')
