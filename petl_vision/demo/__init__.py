"""The quick-start demo: a tiny ViT and a tiny Swin pretrained on scikit-learn's digits, and a shifted few-shot
target task.

Everything here is built from ``sklearn.datasets.load_digits`` (1,797 images, 8x8, values 0..16), which ships
with scikit-learn, so the demo runs offline. Images are upsampled to 32x32 (bilinear), scaled to 0..255 and
repeated over 3 channels: ``uint8 (N, 3, 32, 32)``.

- The 1,797 images are split once, per class, into a *source* pool (all but 70 images of each class, 1,097
  images) and a *target* pool (70 per class, 700 images). No image is in both.
- The shipped backbones (``DEMO_CHECKPOINT``: ViT; ``DEMO_SWIN_CHECKPOINT``: Swin, for the dense multi-task demo
  :class:`~petl_vision.datasets.digits_dense.DigitsDenseMT`) were pretrained by ``tools/make_demo_backbone.py``
  on the source pool: 10-way digit classification on upright digits. The files hold the backbones without heads.
- The target task is the same 10 digits in a shifted domain: target images are rotated counter-clockwise by
  :data:`TARGET_ROTATION` degrees, three times the +-10 degrees of pretraining's augmentation. (Rotating by
  90 degrees or inverting colours was tried too: the features cover them poorly, full fine-tuning reached
  only 0.61-0.66 at 20 shots; see ``README.md``.)
  From each class of the target pool, 40 fixed images form ``test`` (400 images); of the other 30,
  ``shots`` (default 20) form ``train`` and 10 form ``val``, drawn with ``seed``.

Results of ``python tools/make_demo_backbone.py --evaluate`` are in ``petl_vision/demo/README.md``.
"""
import functools
import math
from pathlib import Path

import numpy as np
import torch
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer

DEMO_CHECKPOINT = Path(__file__).with_name('digits_vit_tiny.pth')
DEMO_CHECKPOINT_SHA256 = '47e9b9f294e1ac483f4e6273c93dc81c9ffcaf068cf72e764591031ac026494e'  # printed by the tool
DEMO_SWIN_CHECKPOINT = Path(__file__).with_name('digits_swin_tiny.pth')
DEMO_SWIN_CHECKPOINT_SHA256 = '48a55272fa6a6a405fad11c222aede406e75961489d489ccf526227350ac6c16'  # --arch swin
NUM_CLASSES = 10
IMG_SIZE = 32
TARGET_PER_CLASS = 70  # images of each class held out of pretraining
TEST_PER_CLASS = 40
VAL_PER_CLASS = 10
MAX_SHOTS = TARGET_PER_CLASS - TEST_PER_CLASS - VAL_PER_CLASS  # 20 training images per class at most
TARGET_ROTATION = 30.0
SPLITS = ('train', 'val', 'test')


def demo_backbone_kwargs() -> dict[str, int]:
    """The ``VisionTransformer`` arguments of the shipped backbone (``num_classes`` excluded)."""
    return {'img_size': IMG_SIZE, 'patch_size': 8, 'embed_dim': 96, 'depth': 6, 'num_heads': 3}


def demo_swin_kwargs() -> dict[str, int | tuple[int, ...]]:
    """The ``SwinTransformer`` arguments of the shipped demo Swin (``num_classes`` excluded).

    Patch 2 and four stages of widths 24 / 48 / 96 / 192 (one head per 24 channels): on a (B, 3, 32, 32) input the
    stage maps are (B, 24, 16, 16), (B, 48, 8, 8), (B, 96, 4, 4) and (B, 192, 2, 2). Windows of 4 x 4 tokens
    (timm shrinks them to 2 x 2 in the last stage); no window is shifted: a stage's first block never is, and the
    third stage, the only one with a second block, is a single window.
    """
    return {'img_size': IMG_SIZE, 'patch_size': 2, 'window_size': 4, 'embed_dim': 24, 'depths': (1, 1, 2, 1),
            'num_heads': (1, 2, 4, 8)}


def build_demo_backbone(num_classes: int = NUM_CLASSES, pretrained: bool = True) -> VisionTransformer:
    """The tiny demo ViT with a new (random) head of ``num_classes``; ``num_classes=0`` gives no head."""
    model = VisionTransformer(num_classes=num_classes, **demo_backbone_kwargs())
    if pretrained:
        _load_headless(model, DEMO_CHECKPOINT, 'python tools/make_demo_backbone.py')
    return model


def build_demo_swin(num_classes: int = NUM_CLASSES, pretrained: bool = True) -> SwinTransformer:
    """The tiny demo Swin with a new (random) head ``head.fc`` of ``num_classes``; ``num_classes=0`` gives none."""
    model = SwinTransformer(num_classes=num_classes, **demo_swin_kwargs())
    if pretrained:
        _load_headless(model, DEMO_SWIN_CHECKPOINT, 'python tools/make_demo_backbone.py --arch swin')
    return model


def _load_headless(model: torch.nn.Module, path: Path, recreate: str) -> None:
    """Load a headless demo checkpoint into ``model``; every weight but the head's must be in the file."""
    if not path.is_file():
        raise FileNotFoundError(f'demo checkpoint {path} is missing; recreate it with `{recreate}`')
    state = torch.load(path, map_location='cpu', weights_only=True)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith('head.')]
    unexpected = [k for k in state if k not in own]
    resized = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or resized:
        raise RuntimeError(f'{path} does not fit the demo {type(model).__name__}: missing {missing[:5]}, '
                           f'unexpected {unexpected[:5]}, other shapes {resized[:5]}; recreate it with `{recreate}`')
    model.load_state_dict(state, strict=False)


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``uint8 (N, 3, 32, 32)`` images and ``int64 (N,)`` labels (fresh copies)."""
    images, labels = _digits()
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images / 16.0).float()[:, None]  # (N, 1, 8, 8) in [0, 1]
    big = torch.nn.functional.interpolate(small, size=(IMG_SIZE, IMG_SIZE), mode='bilinear', align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1)  # (N, 3, 32, 32)
    return images.numpy(), digits.target.astype(np.int64)


def _pools(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the source pool and of the target pool (the target pool grouped by class), fixed forever."""
    rng = np.random.default_rng(2024)
    source, target = [], []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        source.append(idx[TARGET_PER_CLASS:])
        target.append(idx[:TARGET_PER_CLASS])
    return np.sort(np.concatenate(source)), np.stack(target)  # (S,), (10, 70)


def shift_to_target(images: np.ndarray) -> np.ndarray:
    """The target domain: ``uint8 (N, 3, H, W)`` images rotated counter-clockwise by ``TARGET_ROTATION`` degrees."""
    x = torch.from_numpy(images).float()
    a = math.radians(TARGET_ROTATION)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]).expand(len(x), 2, 3)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)  # (N, H, W, 2)
    out = torch.nn.functional.grid_sample(x, grid, padding_mode='border', align_corners=False)  # border: background
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


def source_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The pretraining data: upright source-pool digits, ``uint8 (1097, 3, 32, 32)`` and labels."""
    images, labels = digits_images()
    source, _ = _pools(labels)
    return images[source], labels[source]


def target_task_arrays(split: str, seed: int = 0, shots: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """One split of the shifted target task: ``uint8 (N, 3, 32, 32)`` images and ``int64 (N,)`` labels 0..9.

    ``test`` is fixed (40 per class, 400 images) whatever ``seed``; ``train`` (``shots`` per class) and ``val``
    (10 per class) are drawn with ``seed`` from the other 30 images of each class, never overlapping.
    """
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; use one of {SPLITS}')
    if not 1 <= shots <= MAX_SHOTS:
        raise ValueError(f'shots={shots} is out of range; the target task has 1..{MAX_SHOTS} training images per class')
    images, labels = digits_images()
    _, target = _pools(labels)
    if split == 'test':
        idx = target[:, :TEST_PER_CLASS]
    else:
        rng = np.random.default_rng(seed)
        rest = np.stack([rng.permutation(row[TEST_PER_CLASS:]) for row in target])  # (10, 30)
        idx = rest[:, :VAL_PER_CLASS] if split == 'val' else rest[:, VAL_PER_CLASS:VAL_PER_CLASS + shots]
    idx = idx.reshape(-1)
    return shift_to_target(images[idx]), labels[idx]


from . import timm_model  # noqa: E402,F401  (registers the timm models ``vit_digits_demo``, ``swin_digits_demo``)
