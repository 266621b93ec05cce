"""Tiny backbones shared by the test suite (32 px images, a few blocks, small width), and the tools as modules."""
import dataclasses
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer

from petl_vision.backbones.point_transformer import PointTransformer


TOOLS = Path(__file__).resolve().parents[1] / 'tools'


def load_tool(relative: str) -> ModuleType:
    """A script under tools/ (e.g. ``'publish.py'``, ``'misc/make_method_configs.py'``) imported as a module."""
    path = TOOLS / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(relative: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python tools/<relative> ARGS`` from the repository root with one torch thread, output captured."""
    return subprocess.run([sys.executable, str(TOOLS / relative), *args], capture_output=True, text=True,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'}, cwd=TOOLS.parent, timeout=timeout)


def tiny_vit(num_classes: int = 5, **kw) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=num_classes,
                             **kw)


def tiny_swin(num_classes: int = 5) -> SwinTransformer:
    # depths 2: the second block of each stage uses shifted windows, so the window mask path is exercised
    torch.manual_seed(0)
    return SwinTransformer(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2),
                           num_classes=num_classes)


def tiny_point(num_classes: int = 5) -> PointTransformer:
    # positions once and prompts pooled by the head: the DAPT configuration, so every tuner applies
    torch.manual_seed(0)
    return PointTransformer(trans_dim=32, depth=2, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                            num_classes=num_classes, pos_every_block=False, prompt_pool='max')



def tiny_resnet(num_classes: int = 5, bottleneck: bool = False):
    """A timm ResNet with widths 8..64 (divisible by TAN's 8 groups). Not in BACKBONES: the generic suite's presets
    target transformer blocks; ``SUITE_BACKBONES`` below runs the generic suite on it for the
    conv tuners. ``zero_init_last=False`` so the residual branches (where conv tuners sit) are not zeroed."""
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    torch.manual_seed(0)
    return ResNet(Bottleneck if bottleneck else BasicBlock, [1, 2, 1, 1], num_classes=num_classes,
                  channels=(8, 16, 32, 64), stem_width=8, zero_init_last=False)


BACKBONES = {'vit': tiny_vit, 'swin': tiny_swin, 'point': tiny_point}


@dataclasses.dataclass(frozen=True)
class SuiteBackbone:
    """A tiny backbone of the generic tuner suite: how to build it, its classifier's name (trained with the tuners)
    and which cases it runs (None: every preset and every registered type whose ``example_plan`` applies)."""

    build: Callable[[], torch.nn.Module]
    head: str = 'head'
    cases: tuple[str, ...] | None = None


SUITE_BACKBONES = {**{name: SuiteBackbone(fn) for name, fn in BACKBONES.items()},
                   # ResNet has no transformer blocks: the conv tuners of ProLAD / TSA
                   'resnet': SuiteBackbone(tiny_resnet, head='fc',
                                           cases=('type:TA', 'type:TAN', 'type:PreClassifierAlignment'))}


def perturb(model: torch.nn.Module, seed: int = 3, scale: float = 0.1) -> None:
    """Move every trainable tensor away from its (often zero) initialisation, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * scale)


def example_inputs(backbone: str) -> torch.Tensor:
    """A batch for each tiny backbone: images (2, 3, 32, 32) or point clouds (2, 64, 3)."""
    g = torch.Generator().manual_seed(1)
    if backbone == 'point':
        return torch.randn(2, 64, 3, generator=g)
    return torch.randn(2, 3, 32, 32, generator=g)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
