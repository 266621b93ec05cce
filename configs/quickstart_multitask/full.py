# Multi-task full fine-tuning: the whole backbone shared and trained at lr 1e-4 (as the single-task quick start's
# full.py), the task heads at 3e-3 (30 x).
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(plan='full', adapters='shared')
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(custom_keys={'heads': dict(lr_mult=30.0)}))
suite = dict(method='full fine-tuning (shared)', dataset='digits multi-task (4 hard domains)')
