# OxfordFlowers (VPT's FGVC split files train/val/test.json; `python tools/prepare_data.py` builds them). 102 classes.
_base_ = ['./fgvc.py']
dataset_type = 'OxfordFlowers'
data_root = 'data/fgvc/OxfordFlower'
num_classes = 102
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
