# Hyperformer++ hyper-adapters: a shared hypernetwork emits whole adapter matrices per task and layer.
_base_ = ['./_base_/pascal-context_swin-b.py']

model = dict(plan=[dict(type='HyperAdapter', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4)])
