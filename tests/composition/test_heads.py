"""combine_adapters(heads=...): a head tuner is a tuner on the classifier op; 'keep' (default) leaves it out (the
model's own head stays), 'average' mixes it like every other tuner, '<name>' takes that adapter's head exactly."""
import pytest
import torch

import petl_vision as pv
from petl_vision.composition import combine_adapters, head_ops
from petl_vision.tuners import adapter_state, tuned_ops
from tests.conftest import tiny_swin, tiny_vit

LORA = [{'type': 'LoRA', 'rank': 2}]
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def heads_model(build=tiny_vit):
    """Adapters a, b, c: LoRA on every qkv plus a trained head (LinearDelta) of constant deltas 1, 3 and -2 (c's
    bias 5); d: LoRA only."""
    model = build().eval()
    for name, value in (('a', 1.0), ('b', 3.0), ('c', -2.0), ('d', None)):
        pv.add_adapter(model, name, LORA, trainable=('head',) if value is not None else ())
        g = torch.Generator().manual_seed(len(name) + ord(name))
        with torch.no_grad():
            for key, t in adapter_state(model, name).items():
                if '.tuners.trained.' in key:
                    t.fill_(5.0 if name == 'c' and key.endswith('bias') else value)
                else:
                    t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return model


def head_delta(model, adapter) -> dict[str, torch.Tensor] | None:
    state = adapter_state(model, adapter)
    found = {k.rsplit('.', 1)[-1]: t for k, t in state.items() if '.tuners.trained.' in k}
    return found or None


def dw(model, adapter):
    return {op.op.name: op.tuners[adapter]['lora'].task_vector()['delta_weight'] for op in tuned_ops(model)
            if adapter in op.tuners and 'lora' in op.tuners[adapter]}


def test_head_ops_name_the_classifier():
    assert head_ops(heads_model()) == {'head'}
    assert head_ops(heads_model(tiny_swin)) == {'head.fc'}


def test_keep_leaves_the_heads_out_and_the_models_own_head_reads():
    model = heads_model()
    combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'mix')  # heads='keep' by default
    assert head_delta(model, 'mix') is None
    da, db, dm = dw(model, 'a'), dw(model, 'b'), dw(model, 'mix')
    for op in da:
        assert torch.allclose(dm[op], 0.5 * da[op] + 0.5 * db[op], atol=1e-6)
    # the head is the frozen one: against the same mix with the heads averaged (deltas 0.5 * 1 + 0.5 * 3 = 2 on
    # every weight and bias), the logits differ by exactly 2 * sum(features) + 2 in every class
    combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'mix_avg', heads='average')
    pv.set_adapter(model, 'mix')
    with torch.no_grad():
        kept = model(X)
        feats = model.forward_head(model.forward_features(X), pre_logits=True)  # (2, C), the frozen head ahead
        pv.set_adapter(model, 'mix_avg')
        averaged = model(X)
    expected = (2 * feats.sum(1, keepdim=True) + 2).expand_as(kept)
    assert torch.allclose(averaged - kept, expected, atol=1e-4)
    # one adapter, weight 1: the adapter less its head (keep), or itself (its own name)
    combine_adapters(model, ['a'], [1.0], 'a_body')
    assert head_delta(model, 'a_body') is None
    combine_adapters(model, ['a'], [1.0], 'a_copy', heads='a')
    assert torch.equal(head_delta(model, 'a_copy')['weight'], head_delta(model, 'a')['weight'])
    # adapters with and without a head mix with 'keep'
    combine_adapters(model, ['a', 'd'], [0.5, 0.5], 'ad')
    assert head_delta(model, 'ad') is None


def test_average_mixes_the_heads_by_the_method_and_weights():
    model = heads_model()
    combine_adapters(model, ['a', 'b', 'c'], [0.5, 0.25, 1.0], 'avg', heads='average')
    head = head_delta(model, 'avg')
    assert torch.allclose(head['weight'], torch.full_like(head['weight'], 0.5 * 1 + 0.25 * 3 - 2.0))  # -0.75
    assert torch.allclose(head['bias'], torch.full_like(head['bias'], 0.5 + 0.75 + 5.0))  # 6.25
    combine_adapters(model, ['a', 'b', 'c'], None, 'ties', method='ties', density=1.0, heads='average')
    # TIES, density 1: elected sign of 1 + 3 - 2 = + on the weight; disjoint mean of the agreeing 1 and 3
    assert torch.allclose(head_delta(model, 'ties')['weight'], torch.full_like(head['weight'], 2.0))
    with pytest.raises(ValueError, match="no tuner 'trained' on 'head'"):
        combine_adapters(model, ['a', 'd'], None, 'bad', heads='average')  # d has no head to average


def test_name_takes_that_adapters_head_exactly():
    model = heads_model()
    combine_adapters(model, ['a', 'b'], [0.5, 0.5], 'with_c', method='ties', density=0.5, heads='c', scale=0.3)
    head = head_delta(model, 'with_c')
    assert torch.equal(head['weight'], head_delta(model, 'c')['weight'])  # -2: not pruned, scaled or averaged
    assert torch.equal(head['bias'], head_delta(model, 'c')['bias'])
    combine_adapters(model, ['d'], None, 'd_with_b', heads='b')  # a LoRA-only adapter with b's head
    assert torch.equal(head_delta(model, 'd_with_b')['weight'], head_delta(model, 'b')['weight'])
    for op, t in dw(model, 'd_with_b').items():
        assert torch.allclose(t, dw(model, 'd')[op], atol=1e-6)


def test_bad_heads_are_refused_and_add_nothing():
    model = heads_model()
    before = pv.list_adapters(model)
    with pytest.raises(ValueError, match="heads must be 'keep', 'average' or the name of an adapter"):
        combine_adapters(model, ['a', 'b'], None, 'x', heads='mean')
    with pytest.raises(ValueError, match="adapter 'd' has no head tuner.*trainable=\\('head',\\)"):
        combine_adapters(model, ['a', 'b'], None, 'x', heads='d')
    only_head = tiny_vit().eval()
    pv.add_adapter(only_head, 'h', [], trainable=('head',))
    with pytest.raises(ValueError, match='nothing but head tuners'):
        combine_adapters(only_head, ['h'], [0.5], 'x')
    assert pv.list_adapters(model) == before
