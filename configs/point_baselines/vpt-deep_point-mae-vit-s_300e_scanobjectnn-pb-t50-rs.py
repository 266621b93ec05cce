# VPT-deep (the image preset) on the frozen Point-MAE: 10 prompts per block joining each attention's keys/values
# (positions are added before every block, so prompts attend but are not carried between blocks): 46,080 + head.
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(plan='vpt_deep', trainable=['head', 'cls_token', 'cls_pos'])
