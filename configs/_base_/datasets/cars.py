# StanfordCars (VPT's FGVC split files train/val/test.json; `python tools/prepare_data.py` builds them). 196 classes.
_base_ = ['./fgvc.py']
dataset_type = 'StanfordCars'
data_root = 'data/fgvc/Stanford-cars'
num_classes = 196
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
