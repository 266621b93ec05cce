# StanfordDogs (VPT's FGVC split files train/val/test.json; `python tools/prepare_data.py` builds them). 120 classes.
_base_ = ['./fgvc.py']
dataset_type = 'StanfordDogs'
data_root = 'data/fgvc/Stanford-dogs'
num_classes = 120
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
