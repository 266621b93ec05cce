# Hyperformer++ (Karimi Mahabadi et al., ACL 2021): a hypernetwork shared by the four tasks and every block maps
# [task embedding (64); layer embedding (64)] -> 128 -> 64 -> LayerNorm to each block's adapter (after the MLP,
# bottleneck 96 / 12 = 8 as PHA's rank 8; up-projection generator zero-initialised). No retriever, no contrastive
# losses: the baseline PHA builds on (tuners/hyper_adapter.py HyperAdapter). 132,136 parameters on vit_digits_demo.
# Its tuners take one task per call, so mixed batches run one backbone call per task (TaskContextClassifier).
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(type='TaskContextClassifier', label_smoothing=0.1,
             plan=[dict(type='HyperAdapter', targets='blocks.*.mlp', reduction=12)])
suite = dict(method='Hyperformer', dataset='digits multi-task (4 hard domains)')
# the same recipe as PHA's config: generated weights move fast, so the shared hypernetwork trains at 0.1x
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'petl_sources': dict(lr_mult=0.1)}))
