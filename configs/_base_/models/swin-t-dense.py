# Swin-T (ImageNet-1k, timm's swin_tiny_patch4_window7_224.ms_in1k) at 448 x 448 with one light multi-scale
# decoder per task (HRNet-style head on the stage maps after patch merging, reduced to 18/36/72/144 channels,
# upsampled, fused); frozen backbone unless the plan trains it. Tasks, classes and loss weights come from the
# dataset's pair base.
model = dict(
    type='MultiTaskDenseModel',
    backbone=dict(model='swin_tiny_patch4_window7_224.ms_in1k', pretrained='timm', img_size=448,
                  drop_path_rate=0.2),  # MTLoRA's Swin-T configs: DROP_PATH_RATE 0.2
    plan='linear',
    decoder=dict(type='MultiScaleHead', channels=(18, 36, 72, 144), expand=4),
    taps='merged',  # stages after patch merging, 192/384/768/768 on Swin-T: MTLoRA's layout (1,946,624 decoders)
    sal_pos_weight=0.95,
)
