# Polyhistor: decomposed hypernetworks (template kernels) + layer-wise scaling kernels.
# Paper (Swin-T, PASCAL-Context): delta_m +2.34%, 8.96M.
_base_ = ['./_base_/pascal-context_swin-t.py']

model = dict(plan=[dict(type='Polyhistor', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4)])
