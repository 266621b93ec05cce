# PHA (Zhao, Fu & He, EMNLP 2023) on the digits multi-task quick start (configs/_base_/quickstart_multitask.py):
# one hypernetwork shared by the four tasks and every block generates each sample's MLP-parallel adapter from its
# task prototype; the retriever reads the frozen backbone's tokens (a pre-pass) and the two contrastive losses
# (weights 0.1, temperature 0.1, the official L_pro-ins form) pull the prototypes to their instances.
# Paper recipe kept: label smoothing 0.1, prototypes / layer embeddings 64, body 128 -> 64. Changed for the 96-wide
# demo ViT: rank 8 (the paper's 64 is for d = 768; 8 matches configs/quickstart_multitask/adapter.py's bottleneck),
# so the hypernetwork has 131,880 parameters (prototypes 4 x 64 and retriever 20,672 apart; docs/methods/pha.md).
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(type='PHAClassifier', plan=[dict(type='PHA', rank=8)], retriever_features='prepass',
             task_source='given', ins_weight=0.1, pro_weight=0.1, pro_form='official', temperature=0.1,
             label_smoothing=0.1)
# retrieval accuracy beside top-1: how often the nearest prototype is the sample's own task (val/retrieval/...)
val_evaluator = [dict(type='MultiTaskAccuracy'), dict(type='PHARetrievalAccuracy')]
test_evaluator = val_evaluator
suite = dict(method='PHA', dataset='digits multi-task (4 hard domains)')
# The generated adapters move ~64x faster than stored ones (each head weight feeds every entry through z, |z| ~ 1
# per dim): the quick start's 3e-3 on the hypernetwork makes the adapters blow up and the features collapse within
# an epoch, so the hypernetwork and prototypes train at 0.1x (3e-4, the order of the official T5 runs).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'petl_sources': dict(lr_mult=0.1)}))
