# DAPT on ScanObjectNN PB_T50_RS (hardest): paper 85.08% OA, 1,087,771 trainable (with head).
# Official cfgs/finetune_scan_hardest_dapt.yaml (latest): rank 64, adapter dropout 0.2, drop path 0.3.
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(
    backbone=dict(drop_path_rate=0.3, pos_every_block=False, prompt_pool='mean'),
    plan=[dict(type='DynamicAdapter', targets='blocks.*.mlp', dim=64, dropout=0.2),
          dict(type='InternalPrompt', targets='blocks.*'),
          dict(type='SSF', targets=['encoder', 'blocks.*.norm1', 'blocks.*.attn.qkv', 'blocks.*.attn.proj',
                                    'blocks.*.norm2', 'blocks.*.mlp.fc1', 'blocks.*.mlp.fc2', 'norm'])],
    trainable=['head', 'cls_token', 'cls_pos'],
)
