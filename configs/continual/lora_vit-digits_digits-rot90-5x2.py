# Class-incremental digits: the 10 digits seen rotated by 90 degrees, in 5 tasks of 2 classes (order seeded, recorded
# in the run's sequence.json), on the shipped digits ViT (frozen, pretrained on upright digits; head zeroed and
# frozen). 1,097 training / 500 test images, about 220 / 100 per task. A few minutes on one CPU thread.
_base_ = ['./_base_/digits_runtime.py']

_pipeline = [dict(type='PackInputs')]
sequence = dict(protocol='class', num_tasks=5, seed=0,
                train=dict(type='DigitsInDomain', domain='rotated_90', split='train', pipeline=_pipeline),
                test=dict(type='DigitsInDomain', domain='rotated_90', split='test', pipeline=_pipeline))
# per task: LoRA r8 on every attention qkv and a LoRA on the head of rank 2 (= the task's classes: a full-rank
# classifier of its two rows; the other rows stay zero because their logits are masked while the task trains)
adapter = dict(plan=[dict(type='LoRA', targets='blocks.*.attn.qkv', rank=8),
                     dict(type='LoRA', targets='head', rank=2)])
recipe = dict(epochs=20, lr=5e-3, weight_decay=0.0, batch_size=32)
