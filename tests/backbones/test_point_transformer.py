"""Point ops against brute force, the Point-MAE-layout transformer's shapes, counts and checkpoint loading."""
import math

import numpy as np
import pytest
import torch

from petl_vision import apply_tuners, list_presets
from petl_vision.backbones import describe
from petl_vision.ops.point_ops import farthest_point_sample, group, index_points, knn
from petl_vision.backbones.point_transformer import PointTransformer, checkpoint_filter_fn, load_point_checkpoint


def tiny(seed: int = 0, **kw) -> PointTransformer:
    torch.manual_seed(seed)
    cfg = dict(trans_dim=32, depth=2, num_heads=2, group_size=8, num_group=16, encoder_dims=32)
    return PointTransformer(**{**cfg, **kw})


@pytest.fixture
def pts() -> torch.Tensor:
    return torch.randn(2, 128, 3, generator=torch.Generator().manual_seed(0))


def brute_fps(xyz: torch.Tensor, n: int) -> list[int]:
    chosen = [0]
    while len(chosen) < n:
        d = [min(float(((p - xyz[c]) ** 2).sum()) for c in chosen) for p in xyz]
        chosen.append(max(range(len(d)), key=lambda i: (d[i], -i)))
    return chosen


def test_fps_matches_brute_force(pts):
    idx = farthest_point_sample(pts, 10)
    assert idx.shape == (2, 10)
    for b in range(2):
        assert idx[b].tolist() == brute_fps(pts[b], 10)


def test_fps_prefix_property_and_errors(pts):
    # the first m of an FPS sample of n are the FPS sample of m: why ModelNet40 keeps a prefix of its FPS order
    assert torch.equal(farthest_point_sample(pts, 20)[:, :7], farthest_point_sample(pts, 7))
    with pytest.raises(ValueError, match='cannot sample 129 of 128'):
        farthest_point_sample(pts, 129)


def test_knn_matches_brute_force(pts):
    query = pts[:, :5]
    idx = knn(query, pts, 6)
    assert idx.shape == (2, 5, 6)
    for b in range(2):
        for m in range(5):
            d = ((pts[b] - query[b, m]) ** 2).sum(-1).tolist()
            assert idx[b, m].tolist() == sorted(range(128), key=lambda i: d[i])[:6]
    assert (idx[:, :, 0] == torch.arange(5)).all()  # a query point from the cloud is its own nearest neighbour
    with pytest.raises(ValueError, match='neighbours among 128'):
        knn(query, pts, 200)


def test_group_centres_and_neighbourhoods(pts):
    neighborhood, center = group(pts, 16, 8)
    assert neighborhood.shape == (2, 16, 8, 3) and center.shape == (2, 16, 3)
    assert torch.equal(center, index_points(pts, farthest_point_sample(pts, 16)))
    assert torch.allclose(neighborhood[:, :, 0], torch.zeros(2, 16, 3))  # nearest neighbour is the centre itself
    absolute = neighborhood + center[:, :, None]  # (B, G, K, 3)
    radius = neighborhood.norm(dim=-1).max(-1).values  # (B, G)
    for b in range(2):
        for g in range(16):
            assert all((absolute[b, g] == p).all(-1).any() for p in absolute[b, g])  # points of the cloud
            inside = ((pts[b] - center[b, g]).norm(dim=-1) < radius[b, g] - 1e-6).sum()
            assert inside <= 8  # no point outside the patch is closer than its farthest member


def test_forward_shapes_and_pooling(pts):
    model = tiny(num_classes=5).eval()
    tokens = model.forward_features(pts)
    assert tokens.shape == (2, 1 + 16, 32)
    feats = model.forward_head(tokens, pre_logits=True)
    assert torch.equal(feats, torch.cat([tokens[:, 0], tokens[:, 1:].max(1).values], -1))
    assert model(pts).shape == (2, 5)
    assert tiny().eval()(pts).shape == (2, 64)  # no head: the (B, 2C) features


def test_pos_is_added_before_every_block(pts):
    model = tiny().eval()
    seen = []
    for blk in model.blocks:
        blk.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x, pos = model.embed(pts)
    model.forward_features(pts)
    assert torch.allclose(seen[0], x + pos)
    assert torch.allclose(seen[1], model.blocks[0](x + pos) + pos)
    prompt = torch.randn(2, 1, 32)
    first = model.blocks[0](x + pos)
    hook = model.blocks[0].register_forward_hook(lambda m, args, out: torch.cat([out[:, :1], prompt, out[:, 1:]], 1))
    seen.clear()
    out = model.forward_features(pts)
    grown = torch.cat([first[:, :1], prompt, first[:, 1:]], dim=1)
    zero = torch.zeros(2, 1, 32)
    assert out.shape == (2, 18, 32)  # the inserted prompt gets a zero position, the others keep theirs
    assert torch.allclose(seen[1], grown + torch.cat([pos[:, :1], zero, pos[:, 1:]], dim=1), atol=1e-6)
    hook.remove()
    model.blocks[0].register_forward_hook(lambda m, args, out: out[:, 1:])  # a tuner that drops a token
    with pytest.raises(RuntimeError, match='block 1 gets 16 tokens but there are 17 positions: a tuner dropped'):
        model.forward_features(pts)
    once = tiny(pos_every_block=False).eval()
    expected = once.norm(once.blocks[1](once.blocks[0](x + pos)))
    assert torch.allclose(once.forward_features(pts), expected, atol=1e-6)
    once.blocks[0].register_forward_hook(lambda m, args, out: torch.cat([out[:, :1], out], dim=1))
    assert once.forward_features(pts).shape == (2, 18, 32)  # a growing sequence is fine without per-block pos


def test_invariant_to_point_order(pts):
    model = tiny(num_classes=3).eval()
    order = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(127)])  # keep point 0: FPS starts there
    shuffled = pts[:, order]
    assert torch.allclose(model(pts), model(shuffled), atol=1e-5)


def test_vit_s_parameter_count():
    # DAPT Table: full fine-tuning of Point-MAE's ViT-S on ScanObjectNN trains 22.1M parameters
    encoder = (3 * 128 + 128) + 2 * 128 + (128 * 256 + 256) + (512 * 512 + 512) + 2 * 512 + (512 * 384 + 384)
    pos = (3 * 128 + 128) + (128 * 384 + 384)
    block = 768 + 384 * 1152 + (384 * 384 + 384) + 768 + (384 * 1536 + 1536) + (1536 * 384 + 384)
    head = (768 * 256 + 256) + 512 + (256 * 256 + 256) + 512 + (256 * 15 + 15)
    expected = encoder + pos + 2 * 384 + 12 * block + 768 + head
    model = PointTransformer(num_group=128, num_classes=15, drop_path_rate=0.1)
    assert sum(p.numel() for p in model.parameters()) == expected == 22_093_327
    assert sum(p.numel() for p in model.head.parameters()) == head == 267_535


def test_tuners_attach_through_the_descriptor(pts):
    model = tiny(num_classes=3).eval()
    spec = describe(model)
    assert spec.name == 'point' and spec.num_prefix_tokens == 1 and spec.token_ops is None
    before = model(pts)
    model = apply_tuners(model, 'lora').eval()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        f'blocks.{i}.attn.qkv.tuners.default.lora.lora_{ab}' for i in range(2) for ab in 'AB']
    assert torch.equal(model(pts), before)  # LoRA's B starts at zero
    vpt = apply_tuners(tiny(num_classes=3), 'vpt_deep').eval()
    assert [n for n, p in vpt.named_parameters() if p.requires_grad] == [
        'blocks.0.attn.tuners.default.vpt.tokens', 'blocks.1.attn.tuners.default.vpt.tokens']
    assert not torch.allclose(vpt(pts), before)


@pytest.mark.parametrize('preset', sorted(set(list_presets()) - {'linear', 'bypass'}))
def test_every_preset_trains_something(preset, pts):
    model = apply_tuners(tiny(num_classes=3), preset)
    model(pts).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


def _point_mae_pretrain_state(model: PointTransformer) -> dict:
    """Our weights written under Point-MAE's pretraining names, with its decoder and DDP prefix."""
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith('head.') or k in ('cls_token', 'cls_pos'):
            continue
        k = k.replace('blocks.', 'blocks.blocks.', 1) if k.startswith('blocks.') else k
        state[f'module.MAE_encoder.{k}'] = v.clone()
    state['module.mask_token'] = torch.zeros(1, 1, 32)
    state['module.MAE_decoder.blocks.0.norm1.weight'] = torch.ones(32)
    state['module.decoder_pos_embed.0.weight'] = torch.zeros(128, 3)
    state['module.increase_dim.0.weight'] = torch.zeros(24, 32, 1)
    return state


def test_point_mae_checkpoint_round_trip(tmp_path, pts):
    source = tiny(num_classes=4)
    source(pts)  # training-mode pass: BatchNorm running statistics move away from their init
    path = tmp_path / 'pretrain.pth'
    torch.save({'base_model': _point_mae_pretrain_state(source), 'epoch': 300, 'metrics': {'acc': np.float64(0)}}, path)
    target = tiny(seed=1, num_classes=4)
    head_before = {k: v.clone() for k, v in target.state_dict().items() if k.startswith('head.')}
    report = load_point_checkpoint(target, path)
    assert report.unexpected == [] and report.mismatched == []
    assert report.missing == sorted(k for k in target.state_dict() if k.startswith('head.') or k.startswith('cls_'))
    own = source.state_dict()
    for k, v in target.state_dict().items():
        if k in report.loaded:
            assert torch.equal(v, own[k]), k
        else:
            assert not k.startswith('head.') or torch.equal(v, head_before[k]), k
    assert 'blocks.1.attn.qkv.weight' in report.loaded and 'encoder.first_conv.1.running_mean' in report.loaded
    assert not torch.equal(own['encoder.first_conv.1.running_mean'], torch.zeros(128))
    target.load_state_dict({'cls_token': own['cls_token'], 'cls_pos': own['cls_pos']}, strict=False)
    assert torch.allclose(target.eval().forward_features(pts), source.eval().forward_features(pts))


def test_point_bert_and_finetune_keys():
    v = torch.zeros(1)
    state = {'module.transformer_q.blocks.blocks.0.mlp.fc1.weight': v, 'module.transformer_q.reduce_dim.weight': v,
             'module.transformer_q.cls_token': v, 'module.transformer_q.lm_head.weight': v,
             'module.transformer_q.cls_head.0.weight': v, 'module.transformer_k.norm.weight': v,
             'module.dvae.encoder.first_conv.0.weight': v, 'module.queue': v, 'module.queue_ptr': v}
    assert sorted(checkpoint_filter_fn({'base_model': state})) == ['blocks.0.mlp.fc1.weight', 'cls_token',
                                                                     'reduce_dim.weight']
    finetuned = {'cls_head_finetune.8.bias': v, 'blocks.blocks.11.norm2.bias': v, 'cls_pos': v}
    assert sorted(checkpoint_filter_fn({'base_model': finetuned})) == ['blocks.11.norm2.bias', 'cls_pos',
                                                                         'head.8.bias']


def test_point_bert_width_projection(tmp_path):
    model = tiny(encoder_dims=24)
    assert model.reduce_dim.weight.shape == (32, 24)
    state = {f'transformer_q.{k.replace("blocks.", "blocks.blocks.", 1)}': v for k, v in model.state_dict().items()}
    path = tmp_path / 'bert.pth'
    torch.save({'base_model': state}, path)
    assert load_point_checkpoint(tiny(encoder_dims=24), path).missing == []


def test_checkpoint_errors(tmp_path):
    path = tmp_path / 'wide.pth'
    torch.save({'base_model': {f'MAE_encoder.{k}': v for k, v in tiny(trans_dim=48).state_dict().items()}}, path)
    with pytest.raises(ValueError, match=r"shape \(checkpoint, model\).*Build the model with the checkpoint's config"):
        load_point_checkpoint(tiny(), path)
    report = load_point_checkpoint(tiny(), path, strict=False)
    assert 'blocks.0.attn.qkv.weight' in report.mismatched and 'encoder.first_conv.0.weight' in report.loaded
    other = tmp_path / 'other.pth'
    torch.save({'base_model': {'backbone.stem.weight': torch.zeros(1)}}, other)
    with pytest.raises(ValueError, match=r"missing \['blocks"):
        load_point_checkpoint(tiny(), other)
    with pytest.raises(FileNotFoundError, match='Point-MAE / Point-BERT pretrained weights'):
        load_point_checkpoint(tiny(), tmp_path / 'nope.pth')
    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'base_model': {}, 'args': math.sqrt}, unsafe)
    with pytest.raises(ValueError, match='objects other than tensors'):
        load_point_checkpoint(tiny(), unsafe)
