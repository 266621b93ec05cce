# The five FGVC datasets (VPT's split files) as one multi-task run: one MultiTaskDataset, temperature-sampled batches
# (p_t ~ n_t^(1/T), T = 2: NABirds' 24k images do not drown Flowers' 1k), MultiTaskAccuracy. VPT's pipelines.
img_size = 224
fgvc_tasks = dict(cub=('CUB200', 'data/fgvc/CUB_200_2011', 200), nabirds=('NABirds', 'data/fgvc/nabirds', 555),
                  flowers=('OxfordFlowers', 'data/fgvc/OxfordFlower', 102),
                  dogs=('StanfordDogs', 'data/fgvc/Stanford-dogs', 120),
                  cars=('StanfordCars', 'data/fgvc/Stanford-cars', 196))
train_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                  dict(type='RandomCrop', size=img_size), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                 dict(type='CenterCrop', size=img_size), dict(type='PackInputs')]


def _fgvc(split, pipeline):
    return dict(type='MultiTaskDataset', datasets={
        task: dict(type=kind, data_root=root, split=split, pipeline=pipeline)
        for task, (kind, root, _) in fgvc_tasks.items()})


train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='TaskBalancedSampler', mode='temperature', temperature=2.0),
                        dataset=_fgvc('train', train_pipeline))
val_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False), dataset=_fgvc('val', test_pipeline))
test_dataloader = dict(val_dataloader, dataset=_fgvc('test', test_pipeline))
val_evaluator = dict(type='MultiTaskAccuracy')
test_evaluator = val_evaluator
fgvc_classes = {task: n for task, (_, _, n) in fgvc_tasks.items()}
