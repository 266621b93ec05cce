# Tune a preset on your own images, data_root/<class>/*.jpg|png (README: "Tune a preset on your own folder"):
#   python tools/train.py configs/imagefolder/lora_vit-b16-in21k_imagefolder.py \
#       --cfg-options data_root=DIR num_classes=C train_cfg.max_epochs=N
# ViT-B/16 ImageNet-21k with LoRA, the CIFAR-100 LoRA recipe (V-PETL Bench defaults); another preset with
# model.plan=NAME (petl_vision.list_presets()). Validated every epoch on the held-out 20 % (data_split).
_base_ = ['../_base_/models/vit-b16-in21k.py', '../_base_/datasets/imagefolder.py',
          '../_base_/schedules/adamw_cosine_100e.py', '../_base_/default_runtime.py']
model = dict(plan='lora', backbone=dict(num_classes={{_base_.num_classes}}))
# no 10-epoch warm-up: an own folder is often tuned for fewer epochs; the cosine runs to train_cfg.max_epochs
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-8, by_epoch=True, begin=0, convert_to_iter_based=True)]
train_cfg = dict(val_interval=1)
