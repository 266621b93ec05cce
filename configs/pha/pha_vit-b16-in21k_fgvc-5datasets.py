# PHA (Zhao, Fu & He, EMNLP 2023) on the five FGVC datasets as one multi-task run on a frozen ViT-B/16 (IN-21k):
# PHAClassifier's default plan (rank-64 adapters parallel to every MLP, generated from the task prototype by one shared
# hypernetwork of 6,469,504 parameters; the 5 x 64 prototypes and the 106,688-parameter retriever apart), one head
# per task, PHA's loss (label smoothing 0.1 + 0.1 L_ins-ins + 0.1 L_pro-ins, temperature 0.1).
# Data (temperature task sampling, T = 2), schedule and model selection: the per-task LoRA multi-task config this
# inherits (lr 0.001, AdamW, cosine, 100 epochs). Not a tuned recipe: the hypernetwork and prototypes at 0.1x as
# the digits config; no FGVC result has been measured yet.
# Retriever: a frozen pre-pass stopped after block 3 (prepass_block=3): the PHA step is 1.07x the per-task-adapter
# step on ViT-B/16 (the whole pre-pass: 1.36x; docs/benchmarks.md) and every block keeps its generated adapter.
_base_ = ['../multitask/lora_vit-b16-in21k_fgvc-5datasets.py']
model = dict(_delete_=True, type='PHAClassifier',
             backbone=dict(model='vit_base_patch16_224', pretrained='zoo://vit_base_patch16_224.in21k',
                           drop_path_rate=0.1),
             tasks={{_base_.fgvc_classes}}, retriever_features='prepass', prepass_block=3, task_source='given',
             ins_weight=0.1, pro_weight=0.1, pro_form='official', temperature=0.1, label_smoothing=0.1)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'petl_sources': dict(lr_mult=0.1)}))
val_evaluator = [dict(type='MultiTaskAccuracy'), dict(type='PHARetrievalAccuracy')]
test_evaluator = val_evaluator
suite = dict(method='PHA', dataset='fgvc-5datasets')
