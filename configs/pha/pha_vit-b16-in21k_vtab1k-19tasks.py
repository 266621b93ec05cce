# PHA (Zhao, Fu & He, EMNLP 2023) on the 19 VTAB-1k tasks as one multi-task run on a frozen ViT-B/16 (IN-21k): one
# hypernetwork shared by the tasks and the 12 blocks generates each sample's rank-64 adapter parallel to every MLP
# from its task prototype (PHAClassifier's default plan): 6,469,504 parameters, plus the 19 x 64 prototypes and the
# retriever 768 -> 128 -> 64 (106,688), reported apart; one head per task. Paper settings: r = 64, prototypes / layer
# embeddings 64, label smoothing 0.1, L_ins-ins and L_pro-ins (official form) weighted 0.1, temperature 0.1.
# Data, schedule and model selection: the per-task LoRA multi-task config this inherits (AdamW, cosine, 100 epochs,
# best mean val top-1). Not a tuned recipe: lr 0.005 as that config, the hypernetwork and prototypes at 0.1x as the
# digits config (at the full lr the generated adapters blow up there); no VTAB result has been measured yet.
# Retriever: a frozen pre-pass stopped after block 3 (prepass_block=3): the PHA step is 1.07x the per-task-adapter
# step on ViT-B/16 (the whole pre-pass: 1.36x; docs/benchmarks.md) and every block keeps its generated adapter.
_base_ = ['../multitask/lora_vit-b16-in21k_vtab1k-19tasks.py']
model = dict(_delete_=True, type='PHAClassifier',
             backbone=dict(model='vit_base_patch16_224', pretrained='zoo://vit_base_patch16_224.in21k',
                           drop_path_rate=0.1),
             tasks={{_base_.vtab_tasks}}, retriever_features='prepass', prepass_block=3, task_source='given',
             ins_weight=0.1, pro_weight=0.1, pro_form='official', temperature=0.1, label_smoothing=0.1)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'petl_sources': dict(lr_mult=0.1)}))
# retrieval accuracy (val/retrieval/<task>, val/retrieval/all) beside the top-1 of each task
val_evaluator = [dict(type='MultiTaskAccuracy'), dict(type='PHARetrievalAccuracy')]
test_evaluator = val_evaluator
suite = dict(method='PHA', dataset='vtab1k-19tasks')
