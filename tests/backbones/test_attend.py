"""The descriptors' ``attend`` (attention with extra keys/values, for prompts and prefixes) equals the module's
own forward when no key is added, over the timm options it claims to support; others are refused."""
import pytest
import torch
from timm.layers import Attention
from timm.models.swin_transformer import SwinTransformer, WindowAttention

from petl_vision.backbones.swin import swin_attend
from petl_vision.backbones.vit import vit_attend

OPTIONS = {'plain': {}, 'qk_norm': {'qk_norm': True, 'norm_layer': torch.nn.LayerNorm},
           'scale_norm': {'scale_norm': True, 'norm_layer': torch.nn.LayerNorm}, 'gated': {'gated': True},
           'no_bias': {'qkv_bias': False}}


def no_keys(batch: int, heads: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(batch, heads, 0, dim), torch.zeros(batch, heads, 0, dim)


@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('option', sorted(OPTIONS))
def test_vit_attend_equals_timm_attention(option, fused):
    torch.manual_seed(0)
    attn = Attention(32, num_heads=4, **OPTIONS[option]).eval()
    for p in attn.parameters():  # norms start at the identity; move them so they matter
        torch.nn.init.normal_(p, std=0.5)
    attn.fused_attn = fused
    x = torch.randn(2, 7, 32)
    mask = torch.zeros(7, 7)
    mask[:, 4:] = float('-inf')
    for kwargs in ({}, {'attn_mask': mask}):
        torch.testing.assert_close(vit_attend(attn, x, *no_keys(2, 4, 8), **kwargs), attn(x, **kwargs),
                                   rtol=1e-5, atol=1e-5)


def test_vit_attend_refuses_other_attention_classes():
    class Custom(Attention):
        def forward(self, x, attn_mask=None):
            return super().forward(x) * 2

    with pytest.raises(TypeError, match='prompts/prefixes on Custom are not supported'):
        vit_attend(Custom(32, num_heads=4), torch.randn(1, 3, 32), *no_keys(1, 4, 8))


@pytest.mark.parametrize('fused', [True, False])
def test_swin_attend_equals_window_attention_with_bias_and_mask(fused):
    torch.manual_seed(0)
    model = SwinTransformer(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2))
    block = model.layers[0].blocks[1]  # shifted windows: the attention mask is used
    attn: WindowAttention = block.attn.eval()
    attn.fused_attn = fused
    torch.nn.init.normal_(attn.relative_position_bias_table, std=1.0)
    x = torch.randn(2 * 16, 16, 16)  # (B * windows, window tokens, C)
    mask = block.attn_mask
    assert mask is not None
    for m in (None, mask):
        torch.testing.assert_close(swin_attend(attn, x, *no_keys(1, 1, 16), mask=m), attn(x, mask=m),
                                   rtol=1e-5, atol=1e-5)
