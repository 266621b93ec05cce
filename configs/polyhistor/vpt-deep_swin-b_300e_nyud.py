# VPT-deep: 10 prompt tokens in every block's windows.
_base_ = ['./_base_/nyud_swin-b.py']

model = dict(plan='vpt_deep')
