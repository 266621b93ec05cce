# CIFAR-100 (torchvision's cifar-100-python/ pickles): 45,000 train / 5,000 val (seeded, held out of train) /
# 10,000 test; images upsampled to 224 for ViT-B/16. Final runs: train on split='trainval'.
# Single keys (tools/train.py carries them to every loader): data_root=DIR img_size=S num_classes=C and
# data_split.val_size / data_split.seed, the one definition of the held-out val split that train and val share.
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'
num_classes = 100
img_size = 224
data_split = dict(val_size=5_000, seed=0)
train_pipeline = [dict(type='Resize', size=(img_size, img_size)), dict(type='RandomFlip', prob=0.5),
                  dict(type='PackInputs')]
test_pipeline = [dict(type='Resize', size=(img_size, img_size)), dict(type='PackInputs')]
train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, split='train', **data_split,
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, split='val', **data_split,
                                   pipeline=test_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(type=dataset_type, data_root=data_root, split='test',
                                                    pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
