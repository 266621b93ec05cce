"""Features that make tuned models cheap to train and serve: frozen parameters cost no gradient or optimizer
state, Bypass keeps the backbone out of autograd, no wasted work in LoRA and prompts, timm's gradient
checkpointing, bf16 autocast, torch.compile."""
from collections import Counter

import pytest
import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import petl_vision as pv
from petl_vision.benchmark import set_grad_checkpointing
from petl_vision.tuners.lora import LoRA
from tests.conftest import BACKBONES, example_inputs, tiny_vit

LABELS = torch.tensor([1, 3])
TRAINED_PRESETS = [p for p in pv.list_presets() if p != 'full']


def tuned(preset: str, backbone: str = 'vit') -> torch.nn.Module:
    return pv.apply_tuners(BACKBONES[backbone](), preset, trainable=('head',))


def perturb(model: torch.nn.Module) -> None:
    """Move the (often zero-initialised) tuners so the tuned model differs from the frozen one."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize('preset', TRAINED_PRESETS)
def test_frozen_parameters_get_no_grad_and_no_optimizer_state(preset, images):
    model = tuned(preset)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    F.cross_entropy(model(images), LABELS).backward()
    optimizer.step()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert all(p.grad is not None for p in trainable)
    assert {id(p) for p in optimizer.state} == {id(p) for p in trainable}


def test_bypass_keeps_the_backbone_out_of_autograd(images):
    model = tuned('bypass')
    outputs = []
    hooks = [model.blocks[i].base.register_forward_hook(lambda m, a, out: outputs.append(out)) for i in range(2)]
    hooks.append(model.patch_embed.register_forward_hook(lambda m, a, out: outputs.append(out)))
    F.cross_entropy(model(images), LABELS).backward()
    for h in hooks:
        h.remove()
    assert len(outputs) == 3 and not any(o.requires_grad for o in outputs)  # nothing of the backbone is saved
    backbone = [n for n, p in model.named_parameters() if '.tuners.' not in n and not n.startswith('head.')]
    assert backbone and all(model.get_parameter(n).grad is None for n in backbone)
    assert all(p.grad is not None for n, p in model.named_parameters() if '.tuners.' in n)


class OpCounter(TorchDispatchMode):
    """Counts the aten ops that run (forward and backward) inside the ``with`` block."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


MATMULS = ('mm', 'addmm', 'bmm', 'matmul', 'einsum', 'baddbmm')


def test_lora_on_fused_qkv_updates_q_and_v_in_one_pass():
    lora = next(m for m in tuned('lora').modules() if isinstance(m, LoRA))
    assert lora.config.parts == ['q', 'v']
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(2, 5, 64, requires_grad=True)  # (B, N, C)
    with OpCounter() as forward:
        d = lora(x)  # (B, N, 3C)
    torch.testing.assert_close(d, x @ lora.delta_weight().t())  # q and v updated, k untouched
    assert d[..., 64:128].abs().max() == 0 and d[..., :64].abs().max() > 0 and d[..., 128:].abs().max() > 0
    # one matmul for A x of both parts, one for every B; no per-part pieces concatenated
    assert sum(forward.ops[op] for op in MATMULS) == 2 and forward.ops['cat'] == 0
    with OpCounter() as backward:
        d.sum().backward()
    assert sum(backward.ops[op] for op in MATMULS) == 4  # grads of x, A, h and the dense B (no split copies)
    assert backward.ops['cat'] == 0 and backward.ops['split'] == 0


def test_vpt_deep_concatenates_prompts_once_per_block(images):
    model = tuned('vpt_deep')
    depth = len(model.blocks)
    with torch.no_grad(), OpCounter() as counter:
        model(images)
    with torch.no_grad(), OpCounter() as frozen:
        tiny_vit()(images)
    # per block: prompts in after the class token, out again after the block; nothing else
    assert counter.ops['cat'] - frozen.ops['cat'] == 2 * depth


def _loss_and_grads(preset: str, checkpointing: bool, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
    model = tuned(preset)
    perturb(model)
    if checkpointing:
        assert set_grad_checkpointing(model) == 'on'
    loss = F.cross_entropy(model(images), LABELS)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('preset', ['lora', 'adapter', 'vpt_deep', 'vpt_shallow', 'bypass'])
def test_timm_gradient_checkpointing_gives_the_same_loss_and_tuner_grads(preset, images):
    frozen_loss = F.cross_entropy(tiny_vit()(images), LABELS)
    loss, grads = _loss_and_grads(preset, False, images)
    ckpt_loss, ckpt_grads = _loss_and_grads(preset, True, images)
    assert not torch.allclose(loss, frozen_loss)  # the tuners take part
    torch.testing.assert_close(ckpt_loss, loss, rtol=0, atol=1e-6)
    assert ckpt_grads.keys() == grads.keys() and any('.tuners.' in n for n in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize('backbone', sorted(BACKBONES))
@pytest.mark.parametrize('preset', TRAINED_PRESETS + ['full'])
def test_bf16_autocast_training_step_is_finite(preset, backbone):
    model = pv.apply_tuners(BACKBONES[backbone](), preset, trainable=() if preset == 'full' else ('head',))
    perturb(model)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = model(example_inputs(backbone))
        loss = F.cross_entropy(logits, LABELS)
    assert logits.dtype == torch.bfloat16  # autocast did run the matmuls in bf16
    loss.backward()
    assert torch.isfinite(loss)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)


def test_torch_compile_matches_eager(images):
    model = tuned('lora').eval()
    perturb(model)
    with torch.no_grad():
        expected = model(images)
        compiled = torch.compile(model)(images)
    torch.testing.assert_close(compiled, expected, rtol=0, atol=1e-4)
