# VPT-shallow: 10 prompt tokens in the first block's windows.
_base_ = ['./_base_/nyud_swin-t.py']

model = dict(plan='vpt_shallow')
