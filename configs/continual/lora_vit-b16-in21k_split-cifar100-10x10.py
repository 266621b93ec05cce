# Split CIFAR-100, class-incremental: 100 classes in 10 tasks of 10 (label order, as InfLoRA's shuffle=false; a
# seed draws another order, recorded in the run's sequence.json), 50,000 training / 10,000 test images (torchvision's
# cifar-100-python/ pickles in data/cifar100), upsampled to 224 px. Published (final average accuracy / max
# forgetting, %): L2P 83.83 / 7.63, DualPrompt 86.51 / 5.16; InfLoRA 92.07 average incremental accuracy (PILOT's
# "average accuracy"). Our column: docs/continual.md.
_base_ = ['./_base_/vit-b16-in21k_continual.py']

data_root = 'data/cifar100'
_train = [dict(type='Resize', size=(224, 224)), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
_test = [dict(type='Resize', size=(224, 224)), dict(type='PackInputs')]
sequence = dict(protocol='class', num_tasks=10, seed=None, class_order=None,
                train=dict(type='CIFAR100', data_root=data_root, split='trainval', pipeline=_train),
                test=dict(type='CIFAR100', data_root=data_root, split='test', pipeline=_test))
model = dict(num_classes=100)
# LoRA r10 on every qkv (InfLoRA's rank) and a rank-10 head LoRA (= the task's 10 classes)
adapter = dict(plan=[dict(type='LoRA', targets='blocks.*.attn.qkv', rank=10),
                     dict(type='LoRA', targets='head', rank=10)])
recipe = dict(epochs=20)  # InfLoRA: 20 epochs per task on CIFAR-100
memory = dict(per_task=100, sampler='random')  # 2% of each task's 5,000 images
