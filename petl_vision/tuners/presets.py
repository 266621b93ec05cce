"""Named plans: the classic methods with the settings of their papers, for ViT and Swin alike.

Trainable counts on ``vit_base_patch16_224`` without head (checked by the tests): bitfit 102,912;
lora 294,912; adapter 156,768; adaptformer 156,768; houlsby 313,536; vpt_shallow 7,680;
vpt_deep 92,160; prefix 184,320; ssf 205,824; utuning 341,088; bypass 387,312.
"""
import copy
from collections.abc import Callable
from typing import Any

from .descriptor import BackboneSpec

PresetFn = Callable[[BackboneSpec], list[dict[str, Any]]]
PRESETS: dict[str, PresetFn] = {}


def register_preset(name: str) -> Callable[[PresetFn], PresetFn]:
    def deco(fn: PresetFn) -> PresetFn:
        if name in PRESETS:
            raise ValueError(f'preset {name!r} is already defined')
        PRESETS[name] = fn
        return fn
    return deco


def list_presets() -> list[str]:
    return sorted(PRESETS)


def resolve_plan(plan: str | list[dict[str, Any]], spec: BackboneSpec) -> list[dict[str, Any]]:
    """A preset name -> its plan for ``spec``; a list of dicts is validated and copied."""
    if isinstance(plan, str):
        if plan not in PRESETS:
            raise KeyError(f'unknown preset {plan!r}; known presets: {", ".join(list_presets())}')
        return PRESETS[plan](spec)
    if not isinstance(plan, (list, tuple)) or not all(isinstance(e, dict) for e in plan):
        raise TypeError(f'a plan is a preset name or a list of dicts, got {type(plan).__name__}')
    return copy.deepcopy(list(plan))


def _vpt_entry(spec: BackboneSpec, deep: bool) -> dict[str, Any]:
    if spec.token_ops is None:  # windowed attention (Swin): prompts join every window's keys/values
        first = spec.blocks.replace('*', '0')
        return {'targets': f'{spec.blocks}.attn' if deep else f'{first}.attn'}
    return {'targets': spec.blocks} if deep else {'targets': spec.token_ops, 'shallow': True}


def ssf_targets(spec: BackboneSpec) -> list[str]:
    """SSF after the patch embedding, every norm, qkv, proj, fc1, fc2 and the final norm."""
    b = spec.blocks
    targets = [spec.stem, *spec.extra_norms, *spec.extra_linears,
               f'{b}.norm1', f'{b}.attn.qkv', f'{b}.attn.proj', f'{b}.norm2', f'{b}.mlp.fc1', f'{b}.mlp.fc2']
    return [t for t in (*targets, spec.final_norm) if t]


@register_preset('linear')
def linear(spec: BackboneSpec) -> list[dict[str, Any]]:
    """Linear probing: nothing in the backbone trains (pass ``trainable=('head',)``)."""
    return []


@register_preset('full')
def full(spec: BackboneSpec) -> list[dict[str, Any]]:
    return [{'type': 'Full'}]


@register_preset('bitfit')
def bitfit(spec: BackboneSpec) -> list[dict[str, Any]]:
    return [{'type': 'BitFit'}]


@register_preset('lora')
def lora(spec: BackboneSpec) -> list[dict[str, Any]]:
    """LoRA on q and v of the fused qkv, rank 8, alpha = rank (Hu et al. 2021)."""
    return [{'type': 'LoRA', 'targets': f'{spec.blocks}.attn.qkv', 'rank': 8, 'parts': ['q', 'v']}]


@register_preset('adapter')
def adapter(spec: BackboneSpec) -> list[dict[str, Any]]:
    """Pfeiffer adapter: one bottleneck (dim 8, ReLU) after each MLP."""
    return [{'type': 'Adapter', 'targets': f'{spec.blocks}.mlp', 'dim': 8, 'act': 'relu'}]


@register_preset('houlsby')
def houlsby(spec: BackboneSpec) -> list[dict[str, Any]]:
    """Houlsby adapter: bottlenecks (dim 8) after attention and after the MLP."""
    return [{'type': 'Adapter', 'targets': [f'{spec.blocks}.attn', f'{spec.blocks}.mlp'], 'dim': 8, 'act': 'gelu'}]


@register_preset('adaptformer')
def adaptformer(spec: BackboneSpec) -> list[dict[str, Any]]:
    """AdaptFormer: a bottleneck (dim 8, ReLU) parallel to each MLP, scaled by 0.1."""
    return [{'type': 'AdaptFormer', 'targets': f'{spec.blocks}.mlp', 'dim': 8, 'scale': 0.1}]


@register_preset('vpt_shallow')
def vpt_shallow(spec: BackboneSpec) -> list[dict[str, Any]]:
    return [{'type': 'VPT', **_vpt_entry(spec, deep=False), 'num_tokens': 10}]


@register_preset('vpt_deep')
def vpt_deep(spec: BackboneSpec) -> list[dict[str, Any]]:
    return [{'type': 'VPT', **_vpt_entry(spec, deep=True), 'num_tokens': 10}]


@register_preset('prefix')
def prefix(spec: BackboneSpec) -> list[dict[str, Any]]:
    """Prefix tuning: 10 learned keys and values in every attention layer."""
    return [{'type': 'Prefix', 'targets': f'{spec.blocks}.attn', 'num_tokens': 10}]


@register_preset('ssf')
def ssf(spec: BackboneSpec) -> list[dict[str, Any]]:
    return [{'type': 'SSF', 'targets': ssf_targets(spec)}]


@register_preset('utuning')
def utuning(spec: BackboneSpec) -> list[dict[str, Any]]:
    """U-Tuning's main configuration: a parallel prefix on MHA and a parallel bottleneck on the FFN.

    U-Tuning (Jiang et al. 2023) shows prefix tuning is a parallel tuner on attention,
    ``(1 - l) Attn(Q, K, V) + l Attn(Q, K_pre, V_pre)``, and pairs it with a parallel adapter on the FFN.
    With 10 prefix tokens and bottleneck dim 8 this is 341,088 parameters on ViT-B/16 (0.34M; V-PETL
    Bench lists 0.36M without publishing its setting, see docs/methods/utuning.md).
    """
    return [{'type': 'Prefix', 'targets': f'{spec.blocks}.attn', 'num_tokens': 10},
            {'type': 'Adapter', 'targets': f'{spec.blocks}.mlp', 'dim': 8, 'act': 'relu', 'placement': 'parallel',
             'scale': 0.1, 'name': 'ffn_adapter'}]


@register_preset('bypass')
def bypass(spec: BackboneSpec) -> list[dict[str, Any]]:
    """Res-Tuning-Bypass: residual-adapter side network on the detached block outputs (memory-lean)."""
    return [{'type': 'Bypass', 'targets': spec.bypass_ops, 'dim': 10}]
