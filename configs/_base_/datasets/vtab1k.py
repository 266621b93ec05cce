# One VTAB-1k task in NOAH's layout (data/vtab-1k/<task>/{train800,val200,train800val200,test}.txt).
# NOAH's recipe: direct resize to 224 x 224 (bicubic), no augmentation. Model selection: train800 -> val200;
# the reported number: train on split='trainval' (train800val200) with the chosen recipe, evaluate on test.
# Single keys (tools/train.py carries them to every loader): data_root=DIR img_size=S.
dataset_type = 'VTAB1k'
data_root = 'data/vtab-1k'
img_size = 224
vtab_task = 'cifar'  # overridden by each task's config
pipeline = [dict(type='LoadImage'), dict(type='Resize', size=(img_size, img_size), interpolation='bicubic'),
            dict(type='PackInputs')]
train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, task=vtab_task, split='train',
                                      pipeline=pipeline))
val_dataloader = dict(batch_size=128, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, task=vtab_task, split='val',
                                   pipeline=pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
