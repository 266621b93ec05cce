# DAPT on ScanObjectNN OBJ_ONLY: paper 90.19% OA. Official cfgs/finetune_scan_objonly_dapt.yaml: rank 64, adapter
# dropout 0, drop path 0.1, head on [cls, mean of prompts] only (patch_token "None"): 989,467 trainable (with head).
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_objonly.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(
    backbone=dict(drop_path_rate=0.1, pos_every_block=False, prompt_pool='mean', patch_pool=None),
    plan=[dict(type='DynamicAdapter', targets='blocks.*.mlp', dim=64, dropout=0.0),
          dict(type='InternalPrompt', targets='blocks.*'),
          dict(type='SSF', targets=['encoder', 'blocks.*.norm1', 'blocks.*.attn.qkv', 'blocks.*.attn.proj',
                                    'blocks.*.norm2', 'blocks.*.mlp.fc1', 'blocks.*.mlp.fc2', 'norm'])],
    trainable=['head', 'cls_token', 'cls_pos'],
)
