# multi-task full fine-tuning: the backbone at lr 3e-4, the decoders at 3e-3 (10 x)
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan='full')
optim_wrapper = dict(optimizer=dict(lr=3e-4),
                     paramwise_cfg=dict(custom_keys={'decoders': dict(lr_mult=10.0)}))
suite = dict(method='mtl-full')
