# Swin-B (ImageNet-22k, zoo swin_base_patch4_window7_224.in22k) at 448 x 448 with one light multi-scale
# decoder per task (HRNet-style head on the stage maps after patch merging, reduced to 18/36/72/144 channels,
# upsampled, fused); frozen backbone unless the plan trains it. Tasks, classes and loss weights come from the
# dataset's pair base.
model = dict(
    type='MultiTaskDenseModel',
    backbone=dict(model='swin_base_patch4_window7_224',
                  pretrained='zoo://swin_base_patch4_window7_224.in22k', img_size=448,
                  drop_path_rate=0.3),  # Swin-B's own fine-tuning default
    plan='linear',
    decoder=dict(type='MultiScaleHead', channels=(18, 36, 72, 144), expand=4),
    taps='merged',  # stages after patch merging (256/512/1024/1024 channels): the layout of MTLoRA's benchmark
    sal_pos_weight=0.95,
)
