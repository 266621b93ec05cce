# One adapter of the ViT-B/16 IN-21k LoRA library (issue 15, configs/library/README.md): VTAB-1k clevr_count.
# The single-task recipe in _base_ (data, lr, schedule, batch, drop path), its LoRA as the named adapter of the
# task and the head apart (MultiTaskClassifier, one task), so the library holds the LoRA alone. At the end of
# training the adapter, its last val metrics and its domain embedding (mean frozen CLS feature of 16 val batches)
# go into work_dirs/library_vit-b16-in21k.
_base_ = ['../lora/vtab/lora_vit-b16-in21k_vtab-clevr_count.py']
custom_imports = dict(imports=['petl_vision.composition.library_hook'], allow_failed_imports=False)
model = dict(_delete_=True, type='MultiTaskClassifier', backbone={{_base_.model.backbone}},
             tasks=dict(clevr_count=8), plan={{_base_.model.plan}},
             label_smoothing={{_base_.model.label_smoothing}})
custom_hooks = [dict(type='TunerCheckpointHook', save_best='accuracy/top1', rule='greater'),
                dict(type='AdapterLibraryHook', library='work_dirs/library_vit-b16-in21k',
                     dataset='VTAB-1k:clevr_count', overwrite=True)]
suite = dict(method='LoRA library adapter', dataset='clevr_count')
