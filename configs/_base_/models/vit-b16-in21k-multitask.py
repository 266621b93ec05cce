# ViT-B/16 pretrained on ImageNet-21k, frozen, shared by every task: one adapter and one head per task
# (MultiTaskClassifier); the configs set `tasks` (name -> classes) from their dataset base and the plan.
model = dict(
    type='MultiTaskClassifier',
    backbone=dict(model='vit_base_patch16_224', pretrained='zoo://vit_base_patch16_224.in21k', drop_path_rate=0.1),
    plan='lora', adapters='per_task', label_smoothing=0.0)
