# BitFit: every bias of the shared backbone.
_base_ = ['./_base_/nyud_swin-t.py']

model = dict(plan='bitfit')
