# Hyperformer++ hyper-adapters: a shared hypernetwork emits whole adapter matrices per task and layer.
# Paper (Swin-T, PASCAL-Context): delta_m +2.64%, 72.77M.
_base_ = ['./_base_/pascal-context_swin-t.py']

model = dict(plan=[dict(type='HyperAdapter', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4)])
