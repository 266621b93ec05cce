# ScanObjectNN OBJ_BG (2,309 train / 581 test objects with background, 15 classes), 2,048 points as stored.
# data_root: the unzipped h5_files folder (main_split/, main_split_nobg/), see docs/point_clouds.md.
# Training as Point-MAE / DAPT: all 2,048 points in random order, scale (2/3..3/2 per axis) and translate (+-0.2).
# As in those papers (no validation split exists) the test split is the validation split: model selection on it.
dataset_type = 'ScanObjectNN'
data_root = 'data/ScanObjectNN'
variant = 'OBJ_BG'
train_pipeline = [dict(type='PointsSample', num_points=2048), dict(type='PointsScaleTranslate')]
test_pipeline = []
train_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, variant=variant, split='train',
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, variant=variant, split='test',
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1,))
test_evaluator = val_evaluator
