# The FGVC loaders shared by cub/nabirds/flowers/dogs/cars.py, which set each loader's dataset type and data_root.
# VPT's pipelines: train Resize 256 (shorter side) + RandomCrop 224 + flip; eval Resize 256 + CenterCrop 224.
# Single keys (tools/train.py carries them to every loader): data_root=DIR num_classes=C and img_size=S (the crop;
# the resize before it scales with it, 256 / 224). The splits are the dataset's train/val/test.json files.
img_size = 224
train_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                  dict(type='RandomCrop', size=img_size), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                 dict(type='CenterCrop', size=img_size), dict(type='PackInputs')]
train_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(split='train', pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(split='val', pipeline=test_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
