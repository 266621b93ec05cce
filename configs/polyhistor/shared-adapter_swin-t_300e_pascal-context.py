# one bottleneck adapter (r = d / 4) after attention and MLP, shared by the tasks.
_base_ = ['./_base_/pascal-context_swin-t.py']

model = dict(plan=[
    dict(type='Adapter', targets=['layers.0.blocks.*.attn', 'layers.0.blocks.*.mlp'], dim=24, act='gelu',
         name='adapter0'),
    dict(type='Adapter', targets=['layers.1.blocks.*.attn', 'layers.1.blocks.*.mlp'], dim=48, act='gelu',
         name='adapter1'),
    dict(type='Adapter', targets=['layers.2.blocks.*.attn', 'layers.2.blocks.*.mlp'], dim=96, act='gelu',
         name='adapter2'),
    dict(type='Adapter', targets=['layers.3.blocks.*.attn', 'layers.3.blocks.*.mlp'], dim=192, act='gelu',
         name='adapter3'),
])
