"""The methods a benchmark compares: our presets, full fine-tuning and HF PEFT's LoRA, on one timm model."""
import copy
import importlib.util

import timm
import torch
from torch import nn

from ..tuners import apply_tuners, list_presets, merge_tuners, tuned_ops

FULL = 'full'
PEFT_LORA = 'peft_lora'


def peft_available() -> bool:
    return importlib.util.find_spec('peft') is not None


def check_methods(names: list[str]) -> None:
    known = [*list_presets(), PEFT_LORA]
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f'unknown method(s) {bad}; choose from the presets {", ".join(list_presets())} or {PEFT_LORA}')
    if PEFT_LORA in names and not peft_available():
        raise ValueError(f'{PEFT_LORA} needs HF PEFT; `pip install peft` or leave it out')


def create_backbone(model_name: str, img_size: int, num_classes: int) -> nn.Module:
    """A randomly initialised timm model (timings and memory do not depend on the weights)."""
    return timm.create_model(model_name, pretrained=False, img_size=img_size, num_classes=num_classes)


def build_method(name: str, model_name: str, img_size: int, num_classes: int, seed: int = 0) -> nn.Module:
    """``name`` is a preset (its tuners + a trainable head) or ``peft_lora`` (PEFT LoRA r=8 on qkv + head)."""
    torch.manual_seed(seed)
    model = create_backbone(model_name, img_size, num_classes)
    if name == PEFT_LORA:
        import peft

        config = peft.LoraConfig(r=8, lora_alpha=8, target_modules=['qkv'], modules_to_save=['head'])
        return peft.get_peft_model(model, config)
    return apply_tuners(model, name, trainable=() if name == FULL else ('head',))


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
