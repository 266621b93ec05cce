# ScanObjectNN OBJ_ONLY: the OBJ_BG objects without background (main_split_nobg/), 15 classes, 2,048 points.
_base_ = ['./scanobjectnn_objbg.py']
train_dataloader = dict(dataset=dict(variant='OBJ_ONLY'))
val_dataloader = dict(dataset=dict(variant='OBJ_ONLY'))
test_dataloader = val_dataloader
