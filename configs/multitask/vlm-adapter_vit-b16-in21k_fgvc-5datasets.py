# VLM's recipe for vision (Lin, Madotto & Fung 2020): one residual adapter per task after every block
# (x + up(ReLU(down(x))), bottleneck 64: 1,189,632 parameters, 1.39 % of ViT-B/16 per task) and one head per task,
# the five FGVC datasets in mixed-task batches. VLM chose the bottleneck per task (300 / 100 / 10 on GPT-2): set
# model.plans={task: plan} for that.
_base_ = ['../_base_/models/vit-b16-in21k-multitask.py', '../_base_/datasets/fgvc_multitask.py',
          '../_base_/schedules/adamw_cosine_100e.py', '../_base_/default_runtime.py']
model = dict(tasks={{_base_.fgvc_classes}}, plan=[dict(type='Adapter', targets='blocks.*', dim=64, act='relu')])
optim_wrapper = dict(optimizer=dict(lr=0.001, weight_decay=0.0001))
# model selection on the mean of the tasks' val top-1; the best epoch writes one tuner file per task
default_hooks = dict(checkpoint=dict(save_best='mean/top1'))
custom_hooks = [dict(type='TunerCheckpointHook', save_best='mean/top1', rule='greater')]
suite = dict(method='VLM adapter per task', dataset='fgvc-5datasets')
