# Polyhistor-Lite (Liu et al., NeurIPS 2022) on the digits multi-task ViT: a shared hypernetwork generates rank-4
# factors of template kernels 48 x 4 (bottleneck 96 / 12 = 8, as PHA's rank 8), expanded to each block's 96-wide
# adapter (after the MLP) by its own 2 x 2 layer-wise scaling kernels. A plain ViT has one width, so the template
# width is set to half of it (the default, the first layer's width, would make every scaling kernel 1 x 1).
# Its tuners take one task per call, so mixed batches run one backbone call per task (TaskContextClassifier).
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(type='TaskContextClassifier', label_smoothing=0.1,
             plan=[dict(type='PolyhistorLite', targets='blocks.*.mlp', reduction=12, template_dim=48, factor_rank=4)])
suite = dict(method='Polyhistor-Lite', dataset='digits multi-task (4 hard domains)')
# the same recipe as PHA's config: the shared hypernetwork trains at 0.1x (the scaling kernels at the full lr)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'petl_sources': dict(lr_mult=0.1)}))
