"""The quick-start demo: a tiny ViT pretrained on scikit-learn's digits, and a shifted few-shot target task.

Everything here is built from ``sklearn.datasets.load_digits`` (1,797 images, 8x8, values 0..16), which ships
with scikit-learn, so the demo runs offline. Images are upsampled to 32x32 (bilinear), scaled to 0..255 and
repeated over 3 channels: ``uint8 (N, 3, 32, 32)``.

- The 1,797 images are split once, per class, into a *source* pool (all but 70 images of each class, 1,097
  images) and a *target* pool (70 per class, 700 images). No image is in both.
- The shipped backbone (``DEMO_CHECKPOINT``) was pretrained by ``tools/make_demo_backbone.py`` on the source
  pool: 10-way digit classification on upright digits. The file holds the backbone without its head.
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
from timm.models.vision_transformer import VisionTransformer

DEMO_CHECKPOINT = Path(__file__).with_name('digits_vit_tiny.pth')
DEMO_CHECKPOINT_SHA256 = '47e9b9f294e1ac483f4e6273c93dc81c9ffcaf068cf72e764591031ac026494e'  # printed by the tool
NUM_CLASSES = 10
IMG_SIZE = 32
TARGET_PER_CLASS = 70  # images of each class held out of pretraining
TEST_PER_CLASS = 40
VAL_PER_CLASS = 10
TARGET_ROTATION = 30.0
SPLITS = ('train', 'val', 'test')


def demo_backbone_kwargs() -> dict[str, int]:
    """The ``VisionTransformer`` arguments of the shipped backbone (``num_classes`` excluded)."""
    return {'img_size': IMG_SIZE, 'patch_size': 8, 'embed_dim': 96, 'depth': 6, 'num_heads': 3}


def build_demo_backbone(num_classes: int = NUM_CLASSES, pretrained: bool = True) -> VisionTransformer:
    """The tiny demo ViT with a new (random) head of ``num_classes``; ``num_classes=0`` gives no head."""
    model = VisionTransformer(num_classes=num_classes, **demo_backbone_kwargs())
    if pretrained:
        if not DEMO_CHECKPOINT.is_file():
            raise FileNotFoundError(f'demo checkpoint {DEMO_CHECKPOINT} is missing; '
                                    'recreate it with `python tools/make_demo_backbone.py`')
        state = torch.load(DEMO_CHECKPOINT, map_location='cpu', weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith('head.') for k in missing):
            raise RuntimeError(f'{DEMO_CHECKPOINT} does not fit demo_backbone_kwargs(): missing {missing[:5]}, '
                               f'unexpected {unexpected[:5]}; recreate it with `python tools/make_demo_backbone.py`')
    return model


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
    free = TARGET_PER_CLASS - TEST_PER_CLASS - VAL_PER_CLASS
    if not 1 <= shots <= free:
        raise ValueError(f'shots={shots} is out of range; the target task has 1..{free} training images per class')
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


from . import timm_model  # noqa: E402,F401  (registers the timm model ``vit_digits_demo``)
