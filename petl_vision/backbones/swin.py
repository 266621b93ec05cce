"""Descriptor for timm's SwinTransformer: 4 stages of different width, windowed attention.

Tokens live on an (B, H, W, C) grid between blocks, so prompts cannot be appended to one sequence;
VPT on Swin (as in the VPT paper) puts the prompt tokens into every window's attention instead.
"""
import torch
from timm.models.swin_transformer import SwinTransformer, WindowAttention
from torch import nn
from torch.nn import functional as F

from ..tuners.descriptor import BackboneSpec, pad_attn_bias, register_descriptor, split_heads


def _heads(attn: nn.Module) -> int:
    return attn.num_heads


def swin_project_kv(attn: nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _, k, v = attn.qkv(tokens).chunk(3, dim=-1)  # each (B, L, C)
    return split_heads(k, attn.num_heads), split_heads(v, attn.num_heads)


def _rel_pos_bias(attn: nn.Module, n: int) -> torch.Tensor:
    table = attn.relative_position_bias_table[attn.relative_position_index.view(-1)]  # (N*N, H)
    return table.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)  # (1, H, N, N)


def swin_attend(attn: nn.Module, x: torch.Tensor, k_extra: torch.Tensor, v_extra: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """timm ``WindowAttention`` on windows x (B*nW, N, C) with extra keys/values (B*nW|1, H, L, D).

    Extra keys get zero relative-position bias and are never masked (every window sees them).
    """
    if type(attn) is not WindowAttention:
        raise TypeError(f'prompts/prefixes on {type(attn).__name__} are not supported (its forward differs from timm '
                        "WindowAttention's); put the tuner on its qkv/proj Linear layers")
    B_, N, _ = x.shape
    H = attn.num_heads
    q, k, v = attn.qkv(x).reshape(B_, N, 3, H, -1).permute(2, 0, 3, 1, 4)  # 3 x (B_, H, N, D)
    k = torch.cat([k_extra.expand(B_, -1, -1, -1).to(k.dtype), k], dim=2)  # (B_, H, L+N, D)
    v = torch.cat([v_extra.expand(B_, -1, -1, -1).to(v.dtype), v], dim=2)
    bias = _rel_pos_bias(attn, N)
    if mask is not None:
        nw = mask.shape[0]
        mask = mask.view(1, nw, 1, N, N).expand(B_ // nw, -1, H, -1, -1).reshape(-1, H, N, N)
        bias = bias + mask
    bias = pad_attn_bias(bias.to(q.dtype), k_extra.shape[2])
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=attn.attn_drop.p if attn.training else 0.)
    y = y.transpose(1, 2).reshape(B_, N, -1)  # (B_, N, C)
    return attn.proj_drop(attn.proj(y))


@register_descriptor(SwinTransformer)
def swin_spec(model: SwinTransformer) -> BackboneSpec:
    patch = model.patch_embed.patch_size
    return BackboneSpec(
        name='swin', blocks='layers.*.blocks.*', token_ops=None, num_prefix_tokens=0, patch_size=tuple(patch),
        attention_types=(WindowAttention,), attend=swin_attend, project_kv=swin_project_kv, num_heads=_heads,
        stem='patch_embed.proj', final_norm='norm', extra_norms=('patch_embed.norm', 'layers.*.downsample.norm'),
        extra_linears=('layers.*.downsample.reduction',),
        # stages change width, so the bypass follows the last stage (earlier ones stay frozen and grad-free)
        bypass_ops=f'layers.{len(model.layers) - 1}.blocks.*')
