"""The methods a benchmark compares: our presets, full fine-tuning and HF PEFT's LoRA, on one timm model."""
import copy
import importlib.util

import timm
import torch
from torch import nn

from ..tuners import apply_tuners, list_presets, merge_tuners, tuned_ops

FULL = 'full'
PEFT_LORA = 'peft_lora'
DAPT = 'dapt'  # DAPT's plan (dynamic adapters + internal prompts + SSF), point backbones only
# point-cloud backbones by name: Point-MAE's ViT-S with DAPT's token layout (positions once, prompts pooled)
POINT_MODELS = {'point_mae_vit_s': dict(trans_dim=384, depth=12, num_heads=6, group_size=32, num_group=128,
                                        encoder_dims=384, pos_every_block=False, prompt_pool='mean')}
NUM_POINTS = 2048  # ScanObjectNN's points per cloud (128 groups x 32)


def is_point_model(model_name: str) -> bool:
    return model_name in POINT_MODELS


def peft_available() -> bool:
    return importlib.util.find_spec('peft') is not None


def check_methods(names: list[str]) -> None:
    known = [*list_presets(), PEFT_LORA, DAPT]
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f'unknown method(s) {bad}; choose from the presets {", ".join(list_presets())} or {PEFT_LORA}')
    if PEFT_LORA in names and not peft_available():
        raise ValueError(f'{PEFT_LORA} needs HF PEFT; `pip install peft` or leave it out')


def create_backbone(model_name: str, img_size: int, num_classes: int) -> nn.Module:
    """A randomly initialised timm model, or point transformer of :data:`POINT_MODELS` (timings and memory do not
    depend on the weights)."""
    if is_point_model(model_name):
        from ..backbones.point_transformer import PointTransformer

        return PointTransformer(num_classes=num_classes, **POINT_MODELS[model_name])
    return timm.create_model(model_name, pretrained=False, img_size=img_size, num_classes=num_classes)


def example_batch(model_name: str, batch_size: int, img_size: int, num_classes: int,
                  device: torch.device | str = 'cpu') -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs and labels: images (B, 3, S, S), or point clouds (B, NUM_POINTS, 3) for point models."""
    shape = (batch_size, NUM_POINTS, 3) if is_point_model(model_name) else (batch_size, 3, img_size, img_size)
    return torch.randn(shape, device=device), torch.randint(0, num_classes, (batch_size,), device=device)


def build_method(name: str, model_name: str, img_size: int, num_classes: int, seed: int = 0) -> nn.Module:
    """``name`` is a preset (its tuners + a trainable head) or ``peft_lora`` (PEFT LoRA r=8 on qkv + head)."""
    torch.manual_seed(seed)
    model = create_backbone(model_name, img_size, num_classes)
    if name == PEFT_LORA:
        import peft

        config = peft.LoraConfig(r=8, lora_alpha=8, target_modules=['qkv'], modules_to_save=['head'])
        return peft.get_peft_model(model, config)
    if name == DAPT:
        from ..tuners.dapt import DAPT_TRAINABLE, dapt_plan

        if not is_point_model(model_name):
            raise ValueError(f'{DAPT} runs on a point backbone ({", ".join(POINT_MODELS)}), not {model_name}')
        return apply_tuners(model, dapt_plan(), trainable=DAPT_TRAINABLE)
    return apply_tuners(model, name, trainable=() if name == FULL else ('head',))


def set_grad_checkpointing(model: nn.Module) -> str:
    """Turn on timm's gradient checkpointing of the block stack; returns ``'on'`` or why it stays off.

    timm checkpoints ``blocks`` by iterating over it (``checkpoint_seq``); no tuner wraps a container (VPT-shallow
    and Bypass sit on every block and carry their state with the activations), so every preset is checkpointed
    with its tuners.
    """
    if not hasattr(model, 'set_grad_checkpointing'):
        return f'off: {type(model).__name__} has no set_grad_checkpointing'
    model.set_grad_checkpointing(True)
    return 'on'


def merged_copy(name: str, model: nn.Module) -> nn.Module | None:
    """A copy with every tuner folded into the weights, or None when the plan cannot be merged."""
    if name == PEFT_LORA:
        return copy.deepcopy(model).merge_and_unload()
    if name == FULL or not tuned_ops(model):
        return None
    try:
        return merge_tuners(copy.deepcopy(model))
    except ValueError:  # merge_tuners names the non-mergeable tuners; the report just says n/a
        return None
