"""Trainable parameters on the real Swin-T (448 px, built on the meta device): every method of the Polyhistor
benchmark, decoders counted separately, each number derived by hand below (docs/methods/polyhistor.md)."""
import pytest
import torch

import petl_vision as pv
from petl_vision.models.dense import MultiTaskDenseModel

PASCAL = ('semseg', 'human_parts', 'sal', 'normals')
BLOCKS = 'layers.*.blocks.*'
ATTN_MLP = [f'{BLOCKS}.attn', f'{BLOCKS}.mlp']
WIDTHS = (96, 192, 384, 768)  # Swin-T stages
DEPTHS = (2, 2, 6, 2)
BLOCK_WIDTHS = [d for d, n in zip(WIDTHS, DEPTHS) for _ in range(n)]  # 12 blocks -> 24 adapter positions

# the hypernetwork trunk: 4 task + 24 layer embeddings (64), projector 128 -> 128 -> 64, LayerNorm(64)
TRUNK = 4 * 64 + 24 * 64 + (128 * 128 + 128) + (128 * 64 + 64) + 2 * 64
# per adapter position of width d (r = d / 4): scaling kernels 2 m^2 (m = d / 96), biases r + d
POLY_LAYERS = sum(2 * (2 * (d // 96) ** 2 + d // 4 + d) for d in BLOCK_WIDTHS)
HYPER_ADAPTER = TRUNK + sum(65 * (d * (d // 4) + d // 4) + 65 * (d * (d // 4) + d) for d in WIDTHS)
POLYHISTOR = TRUNK + 2 * 65 * (24 * 96) + POLY_LAYERS  # whole templates (24 x 96, 96 x 24)
POLYHISTOR_LITE = TRUNK + 2 * 65 * (24 * 4 + 96 * 4) + POLY_LAYERS  # rank-4 factors of the templates
TASK_ADAPTERS = 4 * sum(2 * (2 * d * (d // 4) + d // 4 + d) for d in BLOCK_WIDTHS)
# one decoder per task on the maps after patch merging (192/384/768/768, the configs' taps='merged'): 1x1
# reductions to 18/36/72/144 (no bias), 270 -> 1080 conv + BN, 1080 -> K conv. MTLoRA's main.py prints the same
# "Decoder params: 1,946,624" and, for its frozen Swin-T plus decoders, "Total params without LoRA: 29,464,442"
# (github.com/scale-lab/MTLoRA/issues/5); the reprinted "decoders only" row says 1.94M.
FUSE = sum(270 * 1080 + 1080 + 2 * 1080 + 1080 * k + k for k in (21, 7, 1, 3))
DECODERS = 4 * (192 * 18 + 384 * 36 + 768 * 72 + 768 * 144) + FUSE
DECODERS_STAGES = 4 * (96 * 18 + 192 * 36 + 384 * 72 + 768 * 144) + FUSE  # taps='stages' (timm's stage outputs)
SWIN_T = 27_517_818  # timm's Swin-T without head and without its final norm, which the dense model drops

SHARED_ADAPTER = [{'type': 'Adapter', 'targets': [f'layers.{i}.blocks.*.attn', f'layers.{i}.blocks.*.mlp'],
                   'dim': d // 4, 'act': 'gelu', 'name': f'adapter{i}'} for i, d in enumerate(WIDTHS)]
METHODS = {
    'decoders_only': ('linear', 0),
    'mtl_full': ('full', SWIN_T),
    # biases: per block qkv 3d + proj d + fc1 4d + fc2 d + 2 norms 2d; patch embedding conv + norm; merging norms
    'bitfit': ('bitfit', 11 * sum(BLOCK_WIDTHS) + 2 * 96 + 4 * (96 + 192 + 384)),
    'lora': ('lora', 141_312),  # q and v of every qkv, rank 8: 4 * 8 * sum(widths over blocks)
    'vpt_deep': ('vpt_deep', 44_160),  # 10 prompt tokens per block: 10 * 4416
    'shared_adapter': (SHARED_ADAPTER, TASK_ADAPTERS // 4),
    'task_adapters': ([{'type': 'TaskAdapter', 'targets': ATTN_MLP}], TASK_ADAPTERS),
    'hyperformer': ([{'type': 'HyperAdapter', 'targets': ATTN_MLP}], HYPER_ADAPTER),
    'polyhistor': ([{'type': 'Polyhistor', 'targets': ATTN_MLP}], POLYHISTOR),
    'polyhistor_lite': ([{'type': 'PolyhistorLite', 'targets': ATTN_MLP}], POLYHISTOR_LITE),
}


def swin_t_model(plan, taps='merged') -> MultiTaskDenseModel:
    with torch.device('meta'):
        return MultiTaskDenseModel(dict(model='swin_tiny_patch4_window7_224', pretrained=None, img_size=448),
                                   tasks=PASCAL, num_classes=dict(semseg=21, human_parts=7), plan=plan, taps=taps)


def test_documented_totals_are_the_counts_of_the_real_modules():
    """docs/methods/polyhistor.md's table, counted on the modules the library builds (and equal to the closed
    forms above, which say where each number comes from)."""
    documented = {'task_adapters': 8_670_336, 'hyperformer': 25_602_888, 'polyhistor': 338_184,
                  'polyhistor_lite': 101_064}
    for method, expected in documented.items():
        assert swin_t_model(METHODS[method][0]).parameter_counts()['trainable'] == expected, method
    assert tuple(documented.values()) == (TASK_ADAPTERS, HYPER_ADAPTER, POLYHISTOR, POLYHISTOR_LITE)
    assert swin_t_model('linear').parameter_counts()['head'] == DECODERS == 1_946_624
    assert swin_t_model('linear', taps='stages').parameter_counts()['head'] == DECODERS_STAGES == 1_801_472


def test_mtl_full_and_decoders_match_mtloras_printed_counts():
    counts = swin_t_model('full').parameter_counts()
    assert (counts['head'], counts['total']) == (1_946_624, 29_464_442)
    assert counts['trainable_with_head'] == counts['total']  # no dead parameter is counted as trained
    assert swin_t_model('linear', taps='stages').parameter_counts()['head'] == DECODERS_STAGES


@pytest.mark.parametrize('method', list(METHODS))
def test_swin_t_trainable_counts(method):
    plan, tuners = METHODS[method]
    counts = swin_t_model(plan).parameter_counts()
    assert counts['head'] == DECODERS  # the decoders, counted apart from the backbone side
    assert counts['trainable'] == tuners
    assert counts['trainable_with_head'] == tuners + DECODERS


def test_shared_hypernetwork_is_registered_and_counted_once():
    model = swin_t_model([{'type': 'Polyhistor', 'targets': ATTN_MLP}])
    backbone = model.backbone
    names = [n for n, p in backbone.named_parameters() if p.requires_grad]
    # task embeddings, 24 layer embeddings, projector (2 Linear), LayerNorm, 2 heads
    assert sum(n.startswith('petl_sources.default.polyhistor.') for n in names) == 1 + 24 + 4 + 2 + 4
    assert pv.count_parameters(backbone)['trainable'] == POLYHISTOR
    # every tuner points at the same module, which is not registered under any tuner
    sources = {id(t.source) for op in pv.tuners.tuned_ops(backbone) for _, _, t in op.all_tuners()}
    assert len(sources) == 1
    assert not any('.tuners.' in n and 'heads' in n for n in names)
