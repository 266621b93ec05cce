# CUB200 (VPT's FGVC split files train/val/test.json; `python tools/prepare_data.py` builds them). 200 classes.
_base_ = ['./fgvc.py']
dataset_type = 'CUB200'
data_root = 'data/fgvc/CUB_200_2011'
num_classes = 200
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
