"""Behaviour of the core beyond the generic suite: errors, LoRA parts, attention paths, state dicts."""
import threading

import pytest
import torch
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.backbones.swin import swin_attend
from petl_vision.backbones.vit import vit_attend
from petl_vision.tuners import TunedOp
from tests.conftest import tiny_swin, tiny_vit


def test_pattern_matching_nothing_names_the_closest_modules():
    with pytest.raises(ValueError, match=r"'blocks\.\*\.atn' matched no module; closest: .*blocks\.0\.attn"):
        pv.apply_tuners(tiny_vit(), [{'type': 'LoRA', 'targets': 'blocks.*.atn'}])


def test_unknown_config_key_and_type_are_named():
    with pytest.raises(TypeError, match=r"'rnak' \(did you mean 'rank'\?\)"):
        pv.apply_tuners(tiny_vit(), [{'type': 'LoRA', 'rnak': 4}])
    with pytest.raises(KeyError, match=r"unknown tuner type 'Lora'.*Did you mean LoRA"):
        pv.apply_tuners(tiny_vit(), [{'type': 'Lora'}])
    with pytest.raises(KeyError, match='known presets'):
        pv.apply_tuners(tiny_vit(), 'loar')


def test_wrong_op_kind_is_explained():
    with pytest.raises(ValueError, match='LoRA needs a Linear op'):
        pv.apply_tuners(tiny_vit(), [{'type': 'LoRA', 'targets': 'blocks.*.mlp'}])
    with pytest.raises(ValueError, match='attach VPT to its attention ops'):
        pv.apply_tuners(tiny_swin(), [{'type': 'VPT', 'targets': 'layers.*.blocks.*'}])


def test_lora_updates_only_q_and_v_and_inits_a_random_b_zero(images):
    model = pv.apply_tuners(tiny_vit(), 'lora')
    lora = model.blocks[0].attn.qkv.tuners['default']['lora']
    assert lora.lora_A.abs().sum() > 0 and lora.lora_B.abs().sum() == 0  # not V-PETL Bench's A = B = 0
    with torch.no_grad():
        lora.lora_B.normal_()
    dw = lora.delta_weight().view(3, 64, 64)
    assert dw[0].abs().sum() > 0 and dw[1].abs().sum() == 0 and dw[2].abs().sum() > 0
    x = torch.randn(4, 64)
    torch.testing.assert_close(lora(x), x @ lora.delta_weight().t())


def test_lora_alpha_scales_the_update():
    model = pv.apply_tuners(tiny_vit(), [{'type': 'LoRA', 'rank': 4, 'alpha': 8, 'targets': 'blocks.0.attn.proj'}])
    lora = model.blocks[0].attn.proj.tuners['default']['lora']
    with torch.no_grad():
        lora.lora_B.normal_()
    A, B = lora.lora_A, lora.lora_B[0]
    torch.testing.assert_close(lora.delta_weight(), 2.0 * B @ A)


def test_attend_without_extras_equals_timm_attention():
    vit = tiny_vit().eval()
    attn, x = vit.blocks[0].attn, torch.randn(2, 17, 64)
    empty = torch.zeros(1, 2, 0, 32)
    torch.testing.assert_close(vit_attend(attn, x, empty, empty), attn(x), rtol=0, atol=1e-6)
    swin = tiny_swin().eval()
    attn = swin.layers[0].blocks[1].attn  # shifted block: its window mask matters
    win = torch.randn(2 * 16, 16, 16)  # (B * windows, tokens per window, C)
    mask = torch.zeros(16, 16, 16)
    mask[3, :8, 8:] = -100.0
    torch.testing.assert_close(swin_attend(attn, win, empty[:, :1, :, :16], empty[:, :1, :, :16], mask),
                               attn(win, mask), rtol=0, atol=1e-6)


def test_prefix_equals_the_utuning_parallel_form():
    """Attn(Q, [K_pre; K], [V_pre; V]) == (1 - l) Attn(Q, K, V) + l Attn(Q, K_pre, V_pre)."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 5, 8, generator=g) for _ in range(3))
    kp, vp = torch.randn(1, 2, 3, 8, generator=g), torch.randn(1, 2, 3, 8, generator=g)
    joint = F.scaled_dot_product_attention(q, torch.cat([kp, k], 2), torch.cat([vp, v], 2))
    s, sp = q @ k.transpose(-1, -2) / 8 ** 0.5, q @ kp.transpose(-1, -2) / 8 ** 0.5
    lam = sp.exp().sum(-1, keepdim=True) / (sp.exp().sum(-1, keepdim=True) + s.exp().sum(-1, keepdim=True))
    parallel = (1 - lam) * F.scaled_dot_product_attention(q, k, v) + lam * F.scaled_dot_product_attention(q, kp, vp)
    torch.testing.assert_close(joint, parallel)


def test_vpt_prompts_sit_after_the_class_and_register_tokens(images):
    model = tiny_vit(reg_tokens=2).eval()
    pv.apply_tuners(model, 'vpt_deep')
    seen = {}
    block = model.blocks[0].base
    block.register_forward_hook(lambda m, inp, out: seen.setdefault('x', inp[0]))
    feats = model.forward_features(images)
    assert feats.shape == (2, 3 + 16, 64)  # prompts dropped again
    prompts = model.blocks[0].tuners['default']['vpt'].tokens[0]
    torch.testing.assert_close(seen['x'][0, 3:13], prompts)  # cls + 2 registers, then 10 prompts


def test_untuned_checkpoints_load_into_a_tuned_model():
    src = tiny_vit()
    with torch.no_grad():
        src.blocks[1].attn.qkv.weight.add_(1.0)
    model = pv.apply_tuners(tiny_vit(), 'lora')
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    assert not unexpected and all('tuners' in k for k in missing)
    assert torch.equal(model.blocks[1].attn.qkv.base.weight, src.blocks[1].attn.qkv.weight)


def test_tuner_file_for_another_backbone_or_plan_is_refused(tmp_path):
    path = pv.save_tuners(pv.apply_tuners(tiny_vit(), 'lora'), tmp_path / 'lora.safetensors')
    with pytest.raises(ValueError, match='was saved for a VisionTransformer .* but this model is a SwinTransformer'):
        pv.load_tuners(tiny_swin(), path)
    with pytest.raises(ValueError, match='tuned with'):
        pv.load_tuners(pv.apply_tuners(tiny_vit(), 'adapter'), path)
    (tmp_path / 'junk.safetensors').write_bytes(b'not a safetensors file')
    with pytest.raises(ValueError, match='not a readable safetensors tuner file'):
        pv.load_tuners(tiny_vit(), tmp_path / 'junk.safetensors')


def test_tuner_file_keeps_batchnorm_statistics_of_trained_modules(tmp_path):
    def model():
        net = tiny_vit()
        net.head = torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.BatchNorm1d(8))  # a trained head with BN
        return pv.apply_tuners(net, 'lora', trainable=('head',))

    trained = model()
    trained.train()
    trained(torch.randn(4, 3, 32, 32))  # moves the head's running statistics
    path = pv.save_tuners(trained, tmp_path / 'bn.safetensors')
    _, tensors = pv.tuners.read_tuner_file(path)
    assert {'head.1.running_mean', 'head.1.running_var', 'head.1.num_batches_tracked'} <= set(tensors)
    assert not any('norm' in k for k in tensors)  # frozen LayerNorms hold no buffers worth saving; none saved
    fresh = pv.load_tuners(model(), path)
    assert torch.equal(fresh.head[1].running_mean, trained.head[1].running_mean)


def test_tuner_file_holds_only_trainable_tensors(tmp_path):
    model = pv.apply_tuners(tiny_vit(), 'lora', trainable=('head',))
    path = pv.save_tuners(model, tmp_path / 'lora.safetensors')
    meta, tensors = pv.tuners.read_tuner_file(path)
    assert sum(t.numel() for t in tensors.values()) == pv.count_parameters(model)['trainable']
    assert meta['plan'][0]['type'] == 'LoRA' and meta['trainable'] == ['head']


def test_unmergeable_plan_names_the_tuners():
    model = pv.apply_tuners(tiny_vit(), 'adapter')
    with pytest.raises(ValueError, match=r'blocks\.0\.mlp:adapter \(Adapter with a relu bottleneck is non-linear\)'):
        pv.merge_tuners(model)


def test_stacked_tuners_on_one_op_and_nested_ops(images):
    plan = [{'type': 'VPT', 'targets': 'blocks.*', 'num_tokens': 3, 'shallow': True},
            {'type': 'LoRA', 'targets': 'blocks.*.attn.qkv'},
            {'type': 'SSF', 'targets': 'blocks.*.attn.qkv'}]
    model = pv.apply_tuners(tiny_vit(), plan)
    assert isinstance(model.blocks[0], TunedOp) and isinstance(model.blocks[0].base.attn.qkv, TunedOp)
    assert list(model.blocks[0].base.attn.qkv.tuners["default"]) == ["lora", "ssf"]
    assert model(images).shape == (2, 5)


def test_tuner_context_is_scoped_and_thread_local():
    seen = []
    with pv.tuner_context(task='a'):
        with pv.tuner_context(task='b', layer=1):
            seen.append(dict(pv.current_context()))
        seen.append(dict(pv.current_context()))
        t = threading.Thread(target=lambda: seen.append(dict(pv.current_context())))
        t.start()
        t.join()
    assert seen == [{'task': 'b', 'layer': 1}, {'task': 'a'}, {}]
    assert pv.current_context() == {}


def test_bypass_keeps_the_backbone_out_of_the_autograd_graph(images):
    model = pv.apply_tuners(tiny_vit(), 'bypass', trainable=('head',))
    flags = []
    for block in model.blocks:
        block.base.register_forward_hook(lambda m, inp, out: flags.append(out.requires_grad))
    out = model(images)
    assert flags == [False, False] and out.requires_grad  # frozen blocks record nothing; the bypass trains
    with pytest.raises(ValueError, match='cannot share the op'):
        pv.apply_tuners(tiny_vit(), [{'type': 'Bypass'}, {'type': 'VPT', 'targets': 'blocks.*'}])
