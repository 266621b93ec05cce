# VPT-deep: 10 prompt tokens per block, shared by the tasks
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan='vpt_deep')
suite = dict(method='vpt-deep')
