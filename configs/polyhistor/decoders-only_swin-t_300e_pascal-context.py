# decoders only: the backbone frozen, one decoder per task trained.
# Paper (Swin-T, PASCAL-Context): delta_m -9.95%, 1.94M.
_base_ = ['./_base_/pascal-context_swin-t.py']

model = dict(plan='linear')
