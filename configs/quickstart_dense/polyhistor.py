# Polyhistor: decomposed hypernetworks (template kernels) + layer-wise scaling kernels
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan=[dict(type='Polyhistor', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4)])
suite = dict(method='polyhistor')
