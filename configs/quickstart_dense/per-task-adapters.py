# one bottleneck adapter (r = d / 4) per task after attention and MLP
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan=[dict(type='TaskAdapter', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4)])
suite = dict(method='per-task-adapters')
