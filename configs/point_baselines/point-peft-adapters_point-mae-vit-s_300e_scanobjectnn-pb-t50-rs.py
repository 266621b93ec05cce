# Point-PEFT's adapters (Tang et al., AAAI 2024; MAE/models in Ivan-Tang-3D/Point-PEFT) where they fit the core:
# a bottleneck (16) on the MLP output scaled by 0.7, and one (16) on each block's output, dropout 0.1: 304,512 + head.
# Not reproduced: its geometry-aware local attention/propagation and the memory-bank point-prior prompts (they need
# patch indices and a feature cache), QuickGELU (GELU here), Xavier init (zero-init up-projections here).
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(
    plan=[dict(type='Adapter', targets='blocks.*.mlp', dim=16, act='gelu', scale=0.7, dropout=0.1, name='mlp_adapter'),
          dict(type='Adapter', targets='blocks.*', dim=16, act='gelu', dropout=0.1, name='block_adapter')],
    trainable=['head', 'cls_token', 'cls_pos'],
)
