# LoRA (the image preset: rank 8 on q and v of the fused qkv) on the frozen Point-MAE: 147,456 + head.
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(plan='lora', trainable=['head', 'cls_token', 'cls_pos'])
