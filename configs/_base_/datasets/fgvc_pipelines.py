# VPT's FGVC pipelines: train Resize 256 (shorter side) + RandomCrop 224 + flip; eval Resize 256 + CenterCrop 224.
train_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                  dict(type='RandomCrop', size=224), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImage'), dict(type='Resize', size=256, interpolation='bilinear'),
                 dict(type='CenterCrop', size=224), dict(type='PackInputs')]
