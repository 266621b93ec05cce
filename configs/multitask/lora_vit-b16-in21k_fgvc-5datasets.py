# One LoRA adapter per task (q and v of every qkv, rank 8: 294,912 parameters, 0.34 % of ViT-B/16 per task) and one
# head per task on one frozen ViT-B/16, the five FGVC datasets trained as one run in mixed-task batches. The
# single-task recipe's lr (0.001) and schedule (AdamW, 10 warm-up epochs, cosine to 100).
_base_ = ['../_base_/models/vit-b16-in21k-multitask.py', '../_base_/datasets/fgvc_multitask.py',
          '../_base_/schedules/adamw_cosine_100e.py', '../_base_/default_runtime.py']
model = dict(tasks={{_base_.fgvc_classes}}, plan='lora')
optim_wrapper = dict(optimizer=dict(lr=0.001, weight_decay=0.0001))
# model selection on the mean of the tasks' val top-1; the best epoch writes one tuner file per task
default_hooks = dict(checkpoint=dict(save_best='mean/top1'))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='mean/top1', rule='greater')]
suite = dict(method='per-task LoRA', dataset='fgvc-5datasets')
