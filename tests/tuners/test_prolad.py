import pytest
import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.backbones import describe
from petl_vision.tuners import tuned_ops
from petl_vision.tuners import set_tuners_active
from petl_vision.tuners.prolad import TA, TAN, EpisodeNorm, PreClassifierAlignment
from tests.conftest import example_inputs, tiny_resnet, tiny_vit
from tests.tuners import test_generic_suite as suite

CONV_TUNERS = ('type:TA', 'type:TAN', 'type:PreClassifierAlignment')

def test_resnet_descriptor_names_the_spatial_convs():
    basic, bottleneck = describe(tiny_resnet()), describe(tiny_resnet(bottleneck=True))
    assert basic.name == 'resnet' and basic.channel_dim == 1 and basic.final_norm is None
    assert basic.conv_ops == ('layer*.*.conv1', 'layer*.*.conv2') and basic.feature_op == 'layer4.0'
    assert bottleneck.conv_ops == ('layer*.*.conv2',)
    model = pv.apply_tuners(tiny_resnet(), [{'type': 'TA'}, {'type': 'PreClassifierAlignment'}])
    assert describe(model).conv_ops == basic.conv_ops  # the descriptor sees through TunedOps
    ops = {op.op.name: op.op for op in tuned_ops(model)}
    assert len(ops) == 2 * 5 + 1  # conv1 and conv2 of the 5 blocks, and the last block
    assert ops['layer2.0.conv1'].stride == (2, 2) and ops['layer2.0.conv1'].kernel_size == (3, 3)
    assert ops['layer4.0'].kind == 'module' and ops['layer4.0'].channel_dim == 1


@pytest.mark.parametrize('case', CONV_TUNERS)
def test_only_conv_tuners_and_fc_get_gradients_on_resnet(case):
    model = tiny_resnet().train()
    pv.apply_tuners(model, suite.plan_of(case, model), trainable=('fc',))
    model(example_inputs('vit')).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        tuner = '.tuners.' in name
        assert (p.grad is not None) == (tuner or name.startswith('fc')), name


def test_ta_is_a_strided_1x1_conv_parallel_to_the_3x3_conv_and_merges_into_its_centre():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)
    model = pv.apply_tuners(nn.Sequential(conv), [{'type': 'TA', 'targets': '0', 'init_scale': 0.1}])
    ta = model[0].tuners['default']['ta']
    x = torch.randn(2, 4, 9, 9)
    y = model(x)
    assert y.shape == (2, 8, 5, 5)
    expected = conv(x) + F.conv2d(x, ta.weight[:, :, None, None], stride=2)
    torch.testing.assert_close(y, expected)
    assert ta.weight.std().item() == pytest.approx(0.1, rel=0.3)
    pv.merge_tuners(model)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)


def test_ta_initialisations():
    model = pv.apply_tuners(tiny_vit(), [{'type': 'TA', 'name': 'random'},
                                         {'type': 'TA', 'name': 'eye', 'init': 'eye', 'init_scale': 1e-4}])
    op = dict((o.op.name, o) for o in tuned_ops(model))['blocks.0.mlp.fc2']
    assert op.tuners['default']['random'].weight.shape == (64, 256)
    assert op.tuners['default']['random'].weight.std().item() == pytest.approx(1e-5, rel=0.1)  # ProLAD's randn * 1e-5
    torch.testing.assert_close(op.tuners['default']['eye'].weight, 1e-4 * torch.eye(64, 256))  # TSA's 1e-4 * I
    with pytest.raises(ValueError, match="init='ones' is not one of"):
        pv.apply_tuners(tiny_vit(), [{'type': 'TA', 'init': 'ones'}])


def _norm_reference(x, dims, eps=1e-7):
    mean, var = x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def test_tan_normalises_with_the_episode_batch_statistics_and_no_affine():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    model = pv.apply_tuners(nn.Sequential(conv), [{'type': 'TAN', 'targets': '0', 'init_scale': 0.1}])
    tan = model[0].tuners['default']['tan']
    assert [n for n, _ in tan.named_parameters()] == ['weight']  # no affine in the norm
    assert tan.weight.shape == (16, 2, 3, 3)  # grouped (8 groups), O's 3x3 kernel
    support = 3 + 2 * torch.randn(6, 16, 5, 5)
    expected = conv(support) + F.conv2d(_norm_reference(support, (0, 2, 3)), tan.weight, padding=1, groups=8)
    tan.train()
    for _ in range(30):  # adaptation steps on the same support set: the running estimate converges to it
        torch.testing.assert_close(model(support), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tan.norm.running_mean, support.mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    tan.eval()  # queries: normalised with the support set's statistics, not their own
    query = torch.randn(2, 16, 5, 5)
    mean = support.mean((0, 2, 3)).view(1, -1, 1, 1)
    std = support.var((0, 2, 3)).view(1, -1, 1, 1).sqrt()  # the running estimate is unbiased, as BatchNorm's
    expected_q = conv(query) + F.conv2d((query - mean) / std, tan.weight, padding=1, groups=8)
    torch.testing.assert_close(model(query), expected_q, rtol=1e-3, atol=1e-3)
    tan.reset_statistics()  # a new episode: no statistics yet, a batch uses its own
    assert int(tan.norm.num_batches) == 0
    torch.testing.assert_close(model(query), conv(query) + F.conv2d(_norm_reference(query, (0, 2, 3)), tan.weight,
                                                                      padding=1, groups=8), rtol=1e-4, atol=1e-4)


def test_tan_on_tokens_is_a_grouped_linear_map_of_normalised_tokens():
    torch.manual_seed(0)
    norm = EpisodeNorm(16, channel_dim=-1)
    x = torch.randn(3, 5, 16)
    torch.testing.assert_close(norm(x), _norm_reference(x, (0, 1)), rtol=1e-4, atol=1e-4)
    model = pv.apply_tuners(tiny_vit(), [{'type': 'TAN', 'groups': 4, 'init_scale': 0.1}])
    tan = dict((o.op.name, o) for o in tuned_ops(model))['blocks.0.mlp'].tuners['default']['tan']
    h = torch.randn(2, 5, 64)
    blocks = torch.block_diag(*tan.weight.view(4, 16, 16))  # (64, 64) block-diagonal
    torch.testing.assert_close(tan(h), _norm_reference(h, (0, 1)) @ blocks.T, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match='groups=3 must divide'):
        pv.apply_tuners(tiny_vit(), [{'type': 'TAN', 'groups': 3}])


def test_alignment_is_identity_at_init_and_maps_pooled_features():
    model = tiny_resnet(num_classes=0).eval()
    x = example_inputs('vit')
    before = model(x)
    pv.apply_tuners(model, [{'type': 'PreClassifierAlignment'}])
    beta = tuned_ops(model)[0].tuners['default']['preclassifieralignment']
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    with torch.no_grad():
        beta.weight.copy_(torch.randn(64, 64))
    torch.testing.assert_close(model(x), before @ beta.weight.T, rtol=1e-4, atol=1e-4)  # commutes with avg pool


def test_set_active_switches_named_tuners_and_names_missing_ones():
    model = tiny_vit(num_classes=0).eval()
    x = example_inputs('vit')
    frozen = model(x)
    pv.apply_tuners(model, [{'type': 'TAN', 'init_scale': 0.1}])
    assert not torch.allclose(model(x), frozen)
    set_tuners_active(model, ['tan'], False)
    torch.testing.assert_close(model(x), frozen, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"no tuner named \['ta'\] is attached"):
        set_tuners_active(model, ['ta'], True)
    assert TA.default_targets(describe(model)) == ['blocks.*.attn.proj', 'blocks.*.mlp.fc2']
    assert TAN.default_targets(describe(model)) == 'blocks.*.mlp'
    assert PreClassifierAlignment.default_targets(describe(model)) == 'norm'
