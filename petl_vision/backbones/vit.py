"""Descriptor for timm's VisionTransformer (any size; class token, register tokens or none).

``vit_attend`` follows timm's ``Attention.forward`` (timm 1.0.9 - 1.0.x: qkv, q/k norm, scale norm, the optional
sigmoid output gate of 1.0.31, proj) and adds extra keys/values; ``tests/backbones/test_attend.py`` checks that with
no extra keys it equals the module's own forward for every option. Attention classes with another forward
(subclasses such as rotary attention) are refused by :func:`check_attention` instead of being run wrongly.
"""
import torch
from timm.models.vision_transformer import Attention, VisionTransformer
from torch import nn
from torch.nn import functional as F

from ..tuners.descriptor import BackboneSpec, pad_attn_bias, register_descriptor, split_heads


def _heads(attn: nn.Module) -> int:
    return attn.num_heads


def vit_project_kv(attn: nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project tokens (B, L, C) to keys/values (B, H, L, D) with the frozen qkv (and k_norm)."""
    _, k, v = attn.qkv(tokens).chunk(3, dim=-1)  # each (B, L, C')
    k = attn.k_norm(split_heads(k, attn.num_heads))
    return k, split_heads(v, attn.num_heads)


def check_attention(attn: nn.Module) -> None:
    """Refuse attention modules whose forward :func:`vit_attend` does not reproduce."""
    if type(attn) is not Attention:
        raise TypeError(f'prompts/prefixes on {type(attn).__name__} are not supported: its forward differs from timm '
                        "Attention's, which is the one petl_vision re-runs with extra keys; use a backbone with "
                        'plain timm Attention, or put the tuner on its qkv/proj Linear layers')


def vit_attend(attn: nn.Module, x: torch.Tensor, k_extra: torch.Tensor, v_extra: torch.Tensor,
               attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
    """timm ``Attention`` on x (B, N, C) with extra keys/values (B, H, L, D) prepended.

    Calls the module's own layers (qkv, q_norm, k_norm, norm, gate, proj) so their tuners, merges and
    quantisation still apply; only the key/value concatenation is ours.
    """
    check_attention(attn)
    if is_causal:
        raise ValueError('prefix/prompt tokens in causal attention are not supported')
    B, N, _ = x.shape
    gate = attn.gate(x).sigmoid() if getattr(attn, 'gate', None) is not None else None
    q, k, v = attn.qkv(x).reshape(B, N, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, D)
    q, k = attn.q_norm(q), attn.k_norm(k)
    k = torch.cat([k_extra.expand(B, -1, -1, -1).to(k.dtype), k], dim=2)  # (B, H, L+N, D)
    v = torch.cat([v_extra.expand(B, -1, -1, -1).to(v.dtype), v], dim=2)
    mask = pad_attn_bias(attn_mask, k_extra.shape[2])
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=attn.attn_drop.p if attn.training else 0.)
    y = y.transpose(1, 2).reshape(B, N, -1)  # (B, N, C')
    y = getattr(attn, 'norm', nn.Identity())(y)
    if gate is not None:
        y = y * gate
    return attn.proj_drop(attn.proj(y))


@register_descriptor(VisionTransformer)
def vit_spec(model: VisionTransformer) -> BackboneSpec:
    patch = model.patch_embed.patch_size
    return BackboneSpec(
        name='vit', blocks='blocks.*', token_ops='blocks.*', num_prefix_tokens=model.num_prefix_tokens,
        patch_size=tuple(patch), attention_types=(Attention,), attend=vit_attend, project_kv=vit_project_kv,
        num_heads=_heads, stem='patch_embed.proj', final_norm='norm', bypass_ops='blocks.*')
