# StanfordDogs (VPT's FGVC split files train/val/test.json; `python tools/prepare_data.py` builds them). 120 classes.
_base_ = ['./fgvc_pipelines.py']
dataset_type = 'StanfordDogs'
data_root = 'data/fgvc/Stanford-dogs'
num_classes = 120
train_dataloader = dict(batch_size=32, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type=dataset_type, data_root=data_root, split='train',
                                     pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type=dataset_type, data_root=data_root, split='val',
                                   pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
