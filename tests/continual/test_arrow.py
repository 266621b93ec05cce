"""Arrow: prototypes = top right singular vectors of each expert's dW, token routing by |<h, v_e>|, top-k softmax,
added to the frozen output by hooks that leave with the context."""
import pytest
import torch
from torch import nn

import petl_vision as pv
from petl_vision.continual import Arrow, arrow_prototype, arrow_weights
from tests.conftest import tiny_vit

LORA_QKV = [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 4}]


def _randomise(model, adapter, seed):
    g = torch.Generator().manual_seed(seed)
    for p in pv.tuners.adapter_parameters(model, adapter):
        p.data = torch.randn(p.shape, generator=g) * 0.1


def test_prototype_is_the_svd_top_right_singular_vector_up_to_sign():
    torch.manual_seed(0)
    B, A = torch.randn(12, 3), torch.randn(3, 20)
    v = arrow_prototype(B @ A)
    oracle = torch.linalg.svd(B @ A).Vh[0]
    assert torch.allclose(v.abs(), oracle.abs(), atol=1e-5)
    assert abs(float(v @ oracle)) == pytest.approx(1.0, abs=1e-5)
    assert float(torch.linalg.norm((B @ A) @ v)) == pytest.approx(float(torch.linalg.svdvals(B @ A)[0]), rel=1e-5)


def test_weights_are_a_top_k_softmax_of_absolute_projections():
    h = torch.tensor([[3.0, -1.0, 0.5]])
    protos = torch.eye(3)
    w = arrow_weights(h, protos, top_k=2)
    logits = torch.tensor([3.0, 1.0])  # |3|, |-1|; the third expert is out of the top 2
    assert torch.allclose(w[0, :2], torch.softmax(logits, 0)) and w[0, 2] == 0
    assert torch.allclose(arrow_weights(-h, protos, top_k=2), w)  # sign-invariant


def test_one_expert_equals_that_adapter_alone():
    model = tiny_vit().eval()
    pv.add_adapter(model, 'a', LORA_QKV)
    _randomise(model, 'a', 0)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), pv.tuner_context(adapter='a'):
        alone = model(x)
    with torch.no_grad(), pv.tuner_context(adapter=None):
        frozen = model(x)
    with torch.no_grad():
        routed = Arrow(model, ['a'])(x)
    assert torch.allclose(routed, alone, atol=1e-5)
    assert (routed - frozen).abs().max() > 1e-2  # the expert does change the output


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        return self.fc(x)


def _orthogonal_experts():
    torch.manual_seed(0)
    model = _Linear()
    for name, cols in (('e0', slice(0, 4)), ('e1', slice(4, 8))):  # dW_e's row space: coordinates 0-3 / 4-7
        pv.add_adapter(model, name, [{'type': 'LoRA', 'targets': 'fc', 'rank': 2}])
        (lora,) = [t for a, _, t in model.fc.all_tuners() if a == name]
        with torch.no_grad():
            lora.lora_A.zero_()
            lora.lora_A[:, cols] = torch.randn(2, 4)
            lora.lora_B.copy_(torch.randn_like(lora.lora_B))
    return model


def test_routing_picks_the_expert_whose_row_space_holds_the_input():
    model = _orthogonal_experts()
    torch.manual_seed(0)
    x = torch.zeros(6, 5, 8)
    x[:3, :, :4] = torch.randn(3, 5, 4)  # samples 0-2 in e0's row space, 3-5 in e1's
    x[3:, :, 4:] = torch.randn(3, 5, 4)
    tasks = torch.tensor([0, 0, 0, 1, 1, 1])
    arrow = Arrow(model, ['e0', 'e1'], record=True)
    with torch.no_grad():
        arrow(x)
    assert arrow.routing_accuracy(tasks) == 1.0  # every one of the 30 tokens goes to its own expert first
    with torch.no_grad(), pv.tuner_context(adapter=['e0'] * 3 + ['e1'] * 3):
        oracle = model(x)
    with torch.no_grad():  # a sharp softmax: each token takes its own expert only, so Arrow gives the oracle's output
        sharp = Arrow(model, ['e0', 'e1'], temperature=1e-3)(x)
    assert torch.allclose(sharp, oracle, atol=1e-5)


def test_hooks_leave_with_the_context_and_the_model_returns_to_normal():
    model = _orthogonal_experts()
    pv.set_adapter(model, 'e0')
    x = torch.randn(3, 8)
    with torch.no_grad():
        before = model(x)
        arrow = Arrow(model, ['e0', 'e1'])
        with arrow:
            assert len(model.fc._forward_hooks) == 1
            inside = model(x)
        after = model(x)
    assert not model.fc._forward_hooks
    assert torch.equal(before, after) and not torch.allclose(inside, before)
    with pytest.raises(RuntimeError):
        try:
            with arrow:
                raise RuntimeError('boom')
        finally:
            assert not model.fc._forward_hooks  # removed on an error too


def test_non_lora_experts_and_unknown_names_are_refused():
    model = tiny_vit()
    pv.add_adapter(model, 'a', LORA_QKV, trainable=('head',))
    with pytest.raises(ValueError, match='LoRA experts'):
        Arrow(model, ['a'])
    with pytest.raises(KeyError, match='nope'):
        Arrow(model, ['nope'])
