# Full fine-tuning of Point-MAE on ScanObjectNN PB_T50_RS: Point-MAE reports 85.18% OA with 22.1M trainable
# (22,093,327 with its [cls, max of patches] head here). Every parameter trains.
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(plan='full', trainable=['head'])
