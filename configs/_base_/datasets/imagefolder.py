# Your own images: data_root/<class>/*.jpg|png (petl_vision.datasets.ImageFolder). The splits are the folder's
# train.txt / val.txt / test.txt when it has them (one relative path per line), else data_split: per class, a
# seeded val_fraction is held out for model selection (and test_fraction for a test split, 0 by default).
# Single keys (tools/train.py carries them to every loader): data_root=DIR img_size=S num_classes=C
# data_split.seed=N data_split.val_fraction=F. Pipelines as VPT's FGVC: resize (8/7 of the crop) + crop + flip.
dataset_type = 'ImageFolder'
data_root = 'data/my_images'
num_classes = None  # the number of class folders: set it, e.g. --cfg-options num_classes=5
img_size = 224
data_split = dict(seed=0, val_fraction=0.2, test_fraction=0.0)
train_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                  dict(type='RandomCrop', size=img_size), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                 dict(type='CenterCrop', size=img_size), dict(type='PackInputs')]
train_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, split='train', **data_split,
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, split='val', **data_split,
                                   pipeline=test_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
