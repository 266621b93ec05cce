_base_ = ['../_base_/quickstart_digits.py']
# full fine-tuning: every backbone weight at lr 1e-4, the new head at 3e-3 (30 x)
model = dict(plan='full', trainable=[])
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(custom_keys={'backbone.head': dict(lr_mult=30.0)}))
suite = dict(method='full', dataset='digits (rotated, 20-shot)')
