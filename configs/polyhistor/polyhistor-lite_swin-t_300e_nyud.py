# Polyhistor-Lite: templates generated as rank-4 factors + layer-wise scaling kernels.
_base_ = ['./_base_/nyud_swin-t.py']

model = dict(plan=[dict(type='PolyhistorLite', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'], reduction=4,
                        factor_rank=4)])
