# one bottleneck adapter (r = d / 4) after attention and MLP, shared by the tasks
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan=[dict(type='Adapter', targets=[f'layers.{i}.blocks.*.attn', f'layers.{i}.blocks.*.mlp'], dim=d // 4,
                         act='gelu', name=f'adapter{i}') for i, d in enumerate((24, 48, 96, 192))])
suite = dict(method='shared-adapter')
