# CIFAR-100 (torchvision's cifar-100-python/ pickles): 45,000 train / 5,000 val (seeded, held out of train) /
# 10,000 test; images upsampled to 224 for ViT-B/16. Final runs: train on split='trainval'.
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'
num_classes = 100
train_pipeline = [dict(type='Resize', size=(224, 224)), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
test_pipeline = [dict(type='Resize', size=(224, 224)), dict(type='PackInputs')]
train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
