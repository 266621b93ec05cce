"""Backbone descriptors: what tuners may know about a backbone, and nothing more.

A descriptor names the backbone's operations and their dimensions (block pattern, token layout,
number of prefix tokens, patch size) and knows how to run one of its attention modules with extra
keys/values (prefix tuning, prompts on windowed attention). Tuners never look inside timm classes;
only the descriptor modules (``petl_vision/backbones/vit.py``, ``swin.py``, ...) do.

The protocol lives here, in the core; each backbone module registers its family's descriptor, as timm's
``@register_model`` does, so a new backbone family is one module and no core edit::

    @register_descriptor(VisionTransformer)
    def vit_spec(model: VisionTransformer) -> BackboneSpec: ...

A model class may instead define ``petl_spec(self) -> BackboneSpec`` (the point transformer does).
"""
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

# attend(attn, x, k_extra, v_extra, *args, **kwargs) -> y; x: (B, N, C), k/v_extra: (B, heads, L, head_dim)
AttendFn = Callable[..., torch.Tensor]
# project_kv(attn, tokens (B, L, C)) -> (k, v), each (B, heads, L, head_dim)
ProjectKVFn = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Description of one backbone family.

    Attributes:
        name: family name (``vit``, ``swin``, ``point``, ``resnet``, ``generic``).
        blocks: glob matching every transformer block (``blocks.*``, ``layers.*.blocks.*``).
        token_ops: glob of the blocks that run one after another on one token sequence (``blocks.*``), through
            which VPT-shallow carries its prompt; None where tokens are not one sequence (Swin keeps an
            (B, H, W, C) grid) or something runs between the blocks (positions added before each block).
        num_prefix_tokens: class/register tokens before the patch tokens; prompts go after them.
        patch_size: (h, w) of a patch, used by VPT's initialisation.
        attention_types: module classes that are attention operations.
        attend / project_kv: see the aliases above; None where the family has no attention.
        num_heads: attention module -> number of heads.
        stem: name of the patch/point embedding's projection (SSF after patch embedding).
        final_norm: name of the final norm, or None.
        extra_norms / extra_linears: further SSF targets (Swin's patch-merging norm and reduction).
        bypass_ops: glob of the consecutive same-width blocks a Res-Tuning-Bypass side network follows.
        channel_dim: where block outputs hold their channels: -1 for tokens ((B, N, C), Swin's (B, H, W, C)),
            1 for NCHW feature maps (ResNet).
        conv_ops: globs of the k x k (k > 1) convolutions inside the blocks (ResNet's 3x3 convs, where TSA and
            ProLAD attach their 1x1 adapters).
        feature_op: the op whose output, pooled, is the feature vector, where that is not ``final_norm``
            (ResNet's last block).
    """

    name: str
    blocks: str
    token_ops: str | None = None
    num_prefix_tokens: int = 0
    patch_size: tuple[int, int] = (16, 16)
    attention_types: tuple[type, ...] = ()
    attend: AttendFn | None = None
    project_kv: ProjectKVFn | None = None
    num_heads: Callable[[nn.Module], int] | None = None
    stem: str | None = None
    final_norm: str | None = 'norm'
    extra_norms: tuple[str, ...] = ()
    extra_linears: tuple[str, ...] = ()
    bypass_ops: str | None = None  # consecutive same-width blocks for Res-Tuning-Bypass
    channel_dim: int = -1
    conv_ops: tuple[str, ...] = ()
    feature_op: str | None = None

    def is_attention(self, module: nn.Module) -> bool:
        return bool(self.attention_types) and isinstance(module, self.attention_types)


DescriptorFn = Callable[[nn.Module], BackboneSpec]
_DESCRIPTORS: dict[type, DescriptorFn] = {}
GENERIC = BackboneSpec(name='generic', blocks='*', final_norm=None)


def register_descriptor(model_cls: type) -> Callable[[DescriptorFn], DescriptorFn]:
    """Decorator: ``fn(model) -> BackboneSpec`` describes instances of ``model_cls`` (and of its subclasses)."""
    def deco(fn: DescriptorFn) -> DescriptorFn:
        if model_cls in _DESCRIPTORS and _DESCRIPTORS[model_cls] is not fn:
            raise ValueError(f'{model_cls.__name__} already has a descriptor ({_DESCRIPTORS[model_cls].__module__})')
        _DESCRIPTORS[model_cls] = fn
        return fn
    return deco


def describe(model: nn.Module) -> BackboneSpec:
    """The descriptor of ``model``'s family: a registered one (the most derived class wins), the model's own
    ``petl_spec()``, or a generic one (Linear/norm targets only)."""
    for cls in type(model).__mro__:
        if cls in _DESCRIPTORS:
            return _DESCRIPTORS[cls](model)
    spec_fn = getattr(model, 'petl_spec', None)
    if callable(spec_fn):
        return spec_fn()
    return GENERIC


def split_heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, C) -> (B, heads, L, C // heads)."""
    B, L, C = t.shape
    return t.reshape(B, L, num_heads, C // num_heads).transpose(1, 2)  # (B, H, L, D)


def pad_attn_bias(bias: torch.Tensor | None, num_extra: int) -> torch.Tensor | None:
    """Left-pad an additive attention bias/mask (..., N, N) with zeros for ``num_extra`` extra keys.

    Boolean masks (True = attend) are padded with True.
    """
    if bias is None or num_extra == 0:
        return bias
    pad_value = True if bias.dtype == torch.bool else 0.0
    return nn.functional.pad(bias, (num_extra, 0), value=pad_value)
