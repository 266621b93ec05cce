"""``apply_tuners`` LoRA gives the same logits as HF PEFT's LoRA with the same weights on a timm model."""
import pytest
import torch

import petl_vision as pv
from tests.conftest import tiny_vit

peft = pytest.importorskip('peft')


def test_lora_on_fused_qkv_matches_peft(images):
    rank, alpha = 4, 8
    theirs = peft.get_peft_model(tiny_vit().eval(), peft.LoraConfig(r=rank, lora_alpha=alpha,
                                                                     target_modules=['qkv', 'fc1']))
    ours = pv.apply_tuners(tiny_vit().eval(), [{'type': 'LoRA', 'targets': ['blocks.*.attn.qkv', 'blocks.*.mlp.fc1'],
                                                 'rank': rank, 'alpha': alpha}])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i, block in enumerate(ours.blocks):
            for op_name in ('attn.qkv', 'mlp.fc1'):
                mine = block.get_submodule(op_name).tuners['default']['lora']
                other = theirs.base_model.model.blocks[i].get_submodule(op_name)
                other.lora_B['default'].weight.normal_(generator=g)
                mine.lora_A.copy_(other.lora_A['default'].weight)
                mine.lora_B[0].copy_(other.lora_B['default'].weight)
    expected = theirs(images)
    assert not torch.allclose(expected, tiny_vit().eval()(images))  # the LoRA updates matter
    torch.testing.assert_close(ours(images), expected, rtol=0, atol=1e-5)
    assert pv.count_parameters(ours)['trainable'] == sum(p.numel() for p in theirs.parameters() if p.requires_grad)
