# Hyperformer++: adapters (r = d / 4) generated per task and layer by one shared hypernetwork
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan=[dict(type='HyperAdapter', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4)])
suite = dict(method='hyperformer')
