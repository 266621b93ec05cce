# Polyhistor-Lite: Polyhistor with rank-4 factor generators of the templates
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan=[dict(type='PolyhistorLite', targets=['layers.*.blocks.*.attn', 'layers.*.blocks.*.mlp'],
                        reduction=4)])
suite = dict(method='polyhistor-lite')
