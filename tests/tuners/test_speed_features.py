"""Features that make tuned models cheap to train and serve: frozen parameters cost no gradient or optimizer
state, Bypass keeps the backbone out of autograd, timm's gradient checkpointing, bf16 autocast, torch.compile."""
import pytest
import torch
from torch.nn import functional as F

import petl_vision as pv
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
    hooks = [model.blocks[i].register_forward_hook(lambda m, a, out: outputs.append(out)) for i in range(2)]
    hooks.append(model.patch_embed.register_forward_hook(lambda m, a, out: outputs.append(out)))
    F.cross_entropy(model(images), LABELS).backward()
    for h in hooks:
        h.remove()
    assert len(outputs) == 3 and not any(o.requires_grad for o in outputs)  # nothing of the backbone is saved
    backbone = [n for n, p in model.named_parameters() if '.tuners.' not in n and not n.startswith('head.')]
    assert backbone and all(model.get_parameter(n).grad is None for n in backbone)
    assert all(p.grad is not None for n, p in model.named_parameters() if '.tuners.' in n)


def _loss_and_grads(preset: str, checkpointing: bool, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
    model = tuned(preset)
    perturb(model)
    model.set_grad_checkpointing(checkpointing)
    loss = F.cross_entropy(model(images), LABELS)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('preset', ['lora', 'adapter'])
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
