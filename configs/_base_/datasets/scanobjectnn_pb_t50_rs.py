# ScanObjectNN PB_T50_RS, the hardest variant (11,416 train / 2,882 test perturbed objects:
# *_augmentedrot_scale75.h5), 15 classes, 2,048 points. Same augmentation as OBJ_BG (DAPT adds no rotation).
_base_ = ['./scanobjectnn_objbg.py']
train_dataloader = dict(dataset=dict(variant='PB_T50_RS'))
val_dataloader = dict(dataset=dict(variant='PB_T50_RS'))
test_dataloader = val_dataloader
