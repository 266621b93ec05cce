# Point-MAE's ViT-S (Pang et al., ECCV 2022; 384 wide, 12 blocks, 6 heads, mini-PointNet tokens of 32 points),
# ShapeNet-pretrained, frozen; the backbone of DAPT, IDPT and Point-PEFT. 128 patches (ScanObjectNN's 2,048 points);
# ModelNet40 configs set num_group=64 (1,024 points) and num_classes=40.
model = dict(
    type='PointClassifier',
    backbone=dict(trans_dim=384, depth=12, num_heads=6, group_size=32, num_group=128, encoder_dims=384,
                  drop_path_rate=0.1, num_classes=15, pretrained='zoo://point_mae.shapenet'),
    plan='linear',
    trainable=['head'],
    label_smoothing=0.0,
)
