# Pfeiffer adapter (the image preset: bottleneck 8, ReLU, after each MLP) on the frozen Point-MAE: 78,432 + head.
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(plan='adapter', trainable=['head', 'cls_token', 'cls_pos'])
