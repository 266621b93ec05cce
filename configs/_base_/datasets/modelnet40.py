# ModelNet40 (9,843 train / 2,468 test shapes, 40 classes) from Point-BERT's modelnet40_{train,test}_8192pts_fps.dat.
# Training as Point-MAE / DAPT: 1,024 points drawn at random from the first 1,200 of the FPS order (an FPS sample of
# 1,200), scale-and-translate; testing: the first 1,024 (an FPS sample of 1,024). No voting.
# As in those papers the test split is the validation split: model selection on it.
dataset_type = 'ModelNet40'
data_root = 'data/ModelNet/modelnet40_normal_resampled'
train_pipeline = [dict(type='PointsSample', num_points=1024), dict(type='PointsScaleTranslate')]
test_pipeline = []
train_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, split='train', npoints=1200,
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, split='test', npoints=1024,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1,))
test_evaluator = val_evaluator
