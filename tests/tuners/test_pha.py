"""PHA: the hypernetwork's size on ViT-B/16 (meta device), per-sample generation in mixed batches, the official
initialisation, context errors, and the two contrastive losses against hand-computed values."""
import math

import pytest
import timm
import torch

import petl_vision as pv
from petl_vision.models.pha_classifier import make_retriever
from petl_vision.tuners.pha import PHAHyperNetwork
from petl_vision.tuners.pha_losses import instance_instance_loss, nearest_prototype, prototype_instance_loss
from tests.conftest import tiny_vit

TASKS = ['a', 'b', 'c']
# d = 768, r = 64, L = 12: layer embeddings 12 * 64; body 128 -> 128 -> 64 and LayerNorm(64);
# heads W_up, W_down 65 * (768 * 64) each, b_up 65 * 768, b_down 65 * 64
HYPERNETWORK = 12 * 64 + (128 * 128 + 128) + (128 * 64 + 64) + 2 * 64 + 2 * 65 * 768 * 64 + 65 * 768 + 65 * 64


def source_of(model) -> PHAHyperNetwork:
    return model.petl_sources['default']['pha']


def test_the_hypernetwork_on_vit_b16_has_the_papers_count():
    with torch.device('meta'):
        model = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0)
        pv.apply_tuners(model, [{'type': 'PHA', 'tasks': TASKS}])
        retriever = make_retriever(768)
    source = source_of(model)
    assert HYPERNETWORK == 6_469_504
    assert source.hypernetwork_parameters() == 6_469_504
    assert source.prototypes.weight.numel() == 3 * 64
    assert pv.count_parameters(model)['trainable'] == 6_469_504 + 3 * 64  # nothing else is trained
    assert sum(p.numel() for p in retriever.parameters()) == 106_688


def tuned(seed: int = 0):
    model = tiny_vit().eval()
    pv.apply_tuners(model, [{'type': 'PHA', 'tasks': TASKS, 'rank': 8}])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in pv.tuners.adapter_parameters(model, 'default'):
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def test_a_mixed_task_batch_equals_each_task_run_alone():
    model, x = tuned(), torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    tasks = ['a', 'c', 'a', 'b']
    with pv.tuner_context(task=tasks):
        mixed = model(x)
    for t in set(tasks):
        rows = [i for i, s in enumerate(tasks) if s == t]
        with pv.tuner_context(task=t):
            torch.testing.assert_close(mixed[rows], model(x[rows]), rtol=1e-5, atol=1e-5)
    with pv.tuner_context(task='a'):
        assert not torch.allclose(mixed[1], model(x[1:2])[0], atol=1e-4)  # task c's adapter differs from a's


def test_given_prototype_vectors_act_as_their_tasks():
    model, x = tuned(), torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    protos = source_of(model).prototypes.weight.detach()
    with pv.tuner_context(task=['b', 'a', 'c']):
        by_task = model(x)
    with pv.tuner_context(prototype=protos[[1, 0, 2]]):
        torch.testing.assert_close(model(x), by_task, rtol=1e-5, atol=1e-5)
    with pv.tuner_context(prototype=protos[0]):  # one vector for the whole batch
        one = model(x)
    with pv.tuner_context(task='a'):
        torch.testing.assert_close(one, model(x), rtol=1e-5, atol=1e-5)


def test_heads_use_the_official_hyperfan_in_initialisation():
    model = tiny_vit()
    pv.apply_tuners(model, [{'type': 'PHA', 'tasks': TASKS, 'rank': 8}])
    heads = source_of(model).heads['64x8']  # d = 64, r = 8
    bounds = {'up': 1e-3 * math.sqrt(3 / (64 * 8)), 'down': 1e-3 * math.sqrt(3 / (64 * 64)),
              'up_bias': 1e-3 * math.sqrt(3 / 64), 'down_bias': 1e-3 * math.sqrt(3 / 64)}
    for name, bound in bounds.items():
        w = heads[name].weight
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound, name
        assert torch.equal(heads[name].bias, torch.zeros_like(heads[name].bias)), name
    assert heads['down'].out_features == 64 * 8 and heads['down_bias'].out_features == 8


def test_context_errors_name_the_fix():
    model, x = tuned(), torch.randn(2, 3, 32, 32)
    with pytest.raises(RuntimeError, match="needs 'task'"):
        model(x)
    with pytest.raises(KeyError, match=r"not \['z'\]"), pv.tuner_context(task=['a', 'z']):
        model(x)
    with pytest.raises(ValueError, match='not a multiple'), pv.tuner_context(task=['a', 'b', 'c']):
        model(x)
    with pytest.raises(ValueError, match='distinct task names'):
        pv.apply_tuners(tiny_vit(), [{'type': 'PHA'}])


# hand-computed losses: e = (1, 0), (0, 1), (1, 0) with tasks 0, 1, 0 and tau = 0.1 give similarities / tau of
# 10 between samples 0 and 2 and 0 elsewhere
E = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # (the loss normalises the first)
Y = torch.tensor([0, 1, 0])


def test_instance_instance_loss_by_hand():
    # anchors 0 and 2: one positive each, -(10 - log(e^0 + e^10)); anchor 1 has no positive and is left out
    expected = math.log1p(math.exp(-10.0))
    assert instance_instance_loss(E, Y).item() == pytest.approx(expected, rel=1e-4)
    assert instance_instance_loss(E, torch.tensor([0, 1, 2])).item() == 0.0  # no positives at all


def test_prototype_instance_loss_official_form_and_infonce_by_hand():
    protos = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]], dtype=torch.float64)
    # rows 0 and 2: logits (10, 0, -10), y = 0; row 1: logits (0, 10, 0), y = 1
    official = [-(10 - math.log(1 + math.exp(-10))), -(10 - math.log(1 + math.exp(-10))), -(10 - math.log(2))]
    infonce = [math.log(1 + math.exp(-10) + math.exp(-20)), math.log(1 + math.exp(-10) + math.exp(-20)),
               math.log(1 + 2 * math.exp(-10))]
    assert prototype_instance_loss(E, Y, protos).item() == pytest.approx(sum(official) / 3, rel=1e-5)
    assert prototype_instance_loss(E, Y, protos, form='infonce').item() == pytest.approx(sum(infonce) / 3, abs=1e-6)
    with pytest.raises(ValueError, match='at least two prototypes'):
        prototype_instance_loss(E, torch.zeros(3, dtype=torch.long), protos[:1])
    assert nearest_prototype(E, protos).tolist() == [0, 1, 0]
