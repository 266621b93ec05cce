# The 19 VTAB-1k tasks as one multi-task run (NOAH's layout, data/vtab-1k/<task>/...; NOAH's recipe: direct resize
# to 224 x 224, no augmentation): one MultiTaskDataset over the tasks, task-balanced batches (every task has 800
# training images, so balanced = proportional), MultiTaskAccuracy (val/<task>/top1 and their mean).
data_root = 'data/vtab-1k'
img_size = 224
vtab_tasks = dict(cifar=100, caltech101=102, dtd=47, oxford_flowers102=102, oxford_iiit_pet=37, svhn=10, sun397=397,
                  patch_camelyon=2, eurosat=10, resisc45=45, diabetic_retinopathy=5, clevr_count=8, clevr_dist=6,
                  dmlab=6, kitti=4, dsprites_loc=16, dsprites_ori=16, smallnorb_azi=18, smallnorb_ele=9)
pipeline = [dict(type='LoadImage'), dict(type='Resize', size=(img_size, img_size), interpolation='bicubic'),
            dict(type='PackInputs')]


def _vtab(split):
    return dict(type='MultiTaskDataset', datasets={
        task: dict(type='VTAB1k', data_root=data_root, task=task, split=split, pipeline=pipeline)
        for task in vtab_tasks})


train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='TaskBalancedSampler', mode='balanced'), dataset=_vtab('train'))
val_dataloader = dict(batch_size=128, num_workers=4, persistent_workers=True, collate_fn=dict(type='default_collate'),
                      sampler=dict(type='DefaultSampler', shuffle=False), dataset=_vtab('val'))
test_dataloader = dict(val_dataloader, dataset=_vtab('test'))
val_evaluator = dict(type='MultiTaskAccuracy')
test_evaluator = val_evaluator
