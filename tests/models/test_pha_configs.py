"""The PHA configs: ViT-B/16 IN-21k on VTAB-1k (19 tasks) and FGVC (5) build on the meta device (no download) with
the paper's hypernetwork count and the retriever and prototypes apart; the default plan; the digits baselines."""
from pathlib import Path

import pytest
import timm
import torch
from mmengine.config import Config

import petl_vision as pv
from petl_vision.registry import MODELS
from petl_vision.setup_env import register_all_modules
from petl_vision.tuners import describe
from petl_vision.tuners.pha import default_plan

register_all_modules()
CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'pha'
HYPERNETWORK, RETRIEVER = 6_469_504, 106_688  # d = 768, r = 64, L = 12 (tests/tuners/test_pha.py); 768 -> 128 -> 64


@pytest.mark.parametrize('name, tasks', [('pha_vit-b16-in21k_vtab1k-19tasks', 19),
                                         ('pha_vit-b16-in21k_fgvc-5datasets', 5)])
def test_the_vit_b16_configs_have_the_papers_counts(name, tasks):
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    assert cfg.model.type == 'PHAClassifier' and 'plan' not in cfg.model  # the default: rank 64 on every MLP
    cfg.model.backbone.pretrained = None
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    counts = model.parameter_counts()
    assert (counts['hypernetwork'], counts['retriever'], counts['prototypes']) == (HYPERNETWORK, RETRIEVER, tasks * 64)
    heads = sum(769 * n for n in cfg.model.tasks.values())
    assert len(cfg.model.tasks) == tasks
    assert counts['trainable'] == HYPERNETWORK + RETRIEVER + tasks * 64 + heads
    assert {c['adapter'] for c in counts['per_task'].values()} == {HYPERNETWORK + tasks * 64}  # one, shared
    assert [e['type'] for e in cfg.val_evaluator] == ['MultiTaskAccuracy', 'PHARetrievalAccuracy']
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {'petl_sources': {'lr_mult': 0.1}}


def test_the_default_plan_is_the_papers_and_not_a_preset():
    with torch.device('meta'):
        vit = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0)
    plan = default_plan(describe(vit))
    assert plan == [{'type': 'PHA', 'targets': 'blocks.*.mlp', 'rank': 64}]
    with torch.device('meta'):
        pv.apply_tuners(vit, [{**plan[0], 'tasks': ['a', 'b']}])
    assert pv.count_parameters(vit)['trainable'] == HYPERNETWORK + 2 * 64
    assert 'pha' not in pv.list_presets()  # presets attach to a backbone alone; PHA needs its task names


@pytest.mark.parametrize('name, adapter', [('hyperformer_digits_multitask', 132_136),
                                           ('polyhistor-lite_digits_multitask', 53_248)])
def test_the_digits_baselines_build_with_their_counts(name, adapter):
    # Hyperformer++ on d = 96, r = 8, 6 blocks: embeddings 4 x 64 + 6 x 64, projector 128 -> 128 -> 64 and LayerNorm,
    # generators 65 x (8 x 96 + 8) and 65 x (96 x 8 + 96): the same count as PHA's hypernetwork and prototypes
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    model = MODELS.build(cfg.model)
    assert {c['adapter'] for c in model.parameter_counts()['per_task'].values()} == {adapter}
    shared = 4 * 64 + 6 * 64 + 128 * 128 + 128 + 128 * 64 + 64 + 2 * 64  # embeddings, projector, LayerNorm
    if name.startswith('hyperformer'):
        assert adapter == shared + 65 * (8 * 96 + 8) + 65 * (96 * 8 + 96)
    else:  # rank-4 factors of 4 x 48 templates; per block 2 x 2 scaling kernels (two) and biases 8 + 96
        assert adapter == shared + 65 * (2 * 4 * 4 + 2 * 48 * 4) + 6 * (2 * 4 + 8 + 96)
