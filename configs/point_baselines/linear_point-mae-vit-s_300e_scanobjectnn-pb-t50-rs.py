# Linear probing (the head only, a 3-layer MLP on [cls, max of patches]) of the frozen Point-MAE: 267,535 trainable.
_base_ = ['../_base_/models/point-mae-vit-s.py', '../_base_/datasets/scanobjectnn_pb_t50_rs.py',
          '../_base_/schedules/point-adamw-cosine-300e.py', '../_base_/default_runtime.py']
model = dict(plan='linear', trainable=['head'])
