# DAPT on ModelNet40: paper 93.5% OA (no voting). Official cfgs/finetune_modelnet_dapt.yaml: 1,024 points, 64
# patches, rank 72, adapter dropout 0, drop path 0.1, head on [cls, max of patches] (prompt_token "None"; the
# internal prompts still join the sequence): 1,069,716 trainable (with head).
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/modelnet40.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(
    backbone=dict(num_group=64, num_classes=40, drop_path_rate=0.1, pos_every_block=False),
    plan=[dict(type='DynamicAdapter', targets='blocks.*.mlp', dim=72, dropout=0.0),
          dict(type='InternalPrompt', targets='blocks.*'),
          dict(type='SSF', targets=['encoder', 'blocks.*.norm1', 'blocks.*.attn.qkv', 'blocks.*.attn.proj',
                                    'blocks.*.norm2', 'blocks.*.mlp.fc1', 'blocks.*.mlp.fc2', 'norm'])],
    trainable=['head', 'cls_token', 'cls_pos'],
)
