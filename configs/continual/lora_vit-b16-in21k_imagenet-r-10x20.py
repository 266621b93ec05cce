# ImageNet-R, class-incremental: 200 classes in 10 tasks of 20 (label order = sorted wnids), the seeded 80/20 split
# of every class (petl_vision.datasets.ImageNetR; data/imagenet-r/imagenet-r/<wnid>/*.jpg), 224 px crops.
# Published (final average accuracy / max forgetting, %): DualPrompt 68.13 / 4.68. Our column: docs/continual.md.
_base_ = ['./_base_/vit-b16-in21k_continual.py']

data_root = 'data/imagenet-r'
_train = [dict(type='LoadImage'), dict(type='RandomResizedCrop', size=224), dict(type='RandomFlip', prob=0.5),
          dict(type='PackInputs')]
_test = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
         dict(type='CenterCrop', size=224), dict(type='PackInputs')]
sequence = dict(protocol='class', num_tasks=10, seed=None, class_order=None,
                train=dict(type='ImageNetR', data_root=data_root, split='train', seed=0, pipeline=_train),
                test=dict(type='ImageNetR', data_root=data_root, split='test', seed=0, pipeline=_test))
model = dict(num_classes=200)
# LoRA r10 on every qkv (InfLoRA's rank) and a rank-20 head LoRA (= the task's 20 classes)
adapter = dict(plan=[dict(type='LoRA', targets='blocks.*.attn.qkv', rank=10),
                     dict(type='LoRA', targets='head', rank=20)])
recipe = dict(epochs=50)  # InfLoRA: 50 epochs per task on ImageNet-R
memory = dict(per_task=100, sampler='random')  # about 4% of each task's ~2,400 training images
