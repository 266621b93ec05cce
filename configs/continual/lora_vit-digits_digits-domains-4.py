# Domain-incremental digits: the digits domains upright, rotated_90, inverted, noisy in that order (about 110
# training and 50 test images each, one 10-way label space) on the shipped digits ViT.
_base_ = ['./_base_/digits_runtime.py']

_pipeline = [dict(type='PackInputs')]
sequence = dict(protocol='domain', domains=[
    dict(name=d, train=dict(type='DigitsMultiTask', task='digit', domain=d, split='train', pipeline=_pipeline),
         test=dict(type='DigitsMultiTask', task='digit', domain=d, split='test', pipeline=_pipeline))
    for d in ('upright', 'rotated_90', 'inverted', 'noisy')])
adapter = dict(plan=[dict(type='LoRA', targets='blocks.*.attn.qkv', rank=8),
                     dict(type='LoRA', targets='head', rank=10)])
recipe = dict(epochs=50, lr=5e-3, weight_decay=0.0, batch_size=32)
