# ViT-B/16 pretrained on ImageNet-21k (the backbone of the VTAB-1k / FGVC PETL tables), frozen.
model = dict(
    type='ImageClassifier',
    backbone=dict(model='vit_base_patch16_224', pretrained='zoo://vit_base_patch16_224.in21k', num_classes=100,
                  drop_path_rate=0.1),
    plan='linear',
    trainable=['head'],
    label_smoothing=0.0,
)
