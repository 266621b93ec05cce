# IDPT (Zha et al., ICCV 2023) on ScanObjectNN PB_T50_RS: DAPT's table lists Point-MAE + IDPT at 84.94% OA, 1.7M.
# Official cfgs/finetune_scan_hardest_idpt.yaml: prompt from a 3-EdgeConv DGCNN (k 20) after block 11 of 12,
# positions before every block, head on [cls, prompt, max of patches], drop path 0.1: 1,696,783 trainable (with head).
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(
    backbone=dict(prompt_pool='max'),
    plan=[dict(type='IDPT', targets='blocks.10', k=20, num_edge_convs=3)],
    trainable=['head', 'cls_token', 'cls_pos'],
)
