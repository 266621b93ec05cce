"""``DigitsMultiTask``: the composition demo's data, scikit-learn's digits in ten domains under four tasks.

Images are the quick start's: :func:`~petl_vision.datasets.digits.digits_arrays` (1,797 digits, uint8
(3, 32, 32)). Each image belongs to exactly one of the ten :data:`DOMAINS` and one split, drawn per digit from a
generator seeded with ``(seed, digit)``:

- ``val`` and ``test`` come from the 700 images held out of the demo backbones' pretraining
  (:mod:`petl_vision.demo`, 70 per digit): each domain gets 7 of every digit, 5 for ``test`` and 2 for ``val``;
- ``train`` comes from the 1,097 pretraining images (the backbone saw them upright, which is no leak: training on
  them is allowed, evaluating on them is not): each digit's images are dealt into ten near-equal parts, part
  ``(k + digit) % 10`` for domain ``k``, so every domain gets 109 or 110.

Domains (:func:`domain_images`), all on the 32 px grey level ``x`` in 0..255, repeated over the channels:

- ``upright``: unchanged; ``rotated_30`` / ``rotated_60`` / ``rotated_90``: rotated counter-clockwise (bilinear,
  border pixels repeated: :func:`rotate`, as the quick start's 30-degree target);
- ``inverted``: ``255 - x``; ``thick`` / ``thin``: grey dilation / erosion over 3 x 3 pixels;
- ``blurred``: Gaussian blur, sigma :data:`BLUR_SIGMA` px; ``noisy``: plus Gaussian noise of std :data:`NOISE_STD`
  (one fixed draw per image, seeded by :data:`NOISE_SEED`, the same whatever the split seed), clipped;
- ``shifted``: moved :data:`SHIFT_PX` px to the right, background entering on the left (digits fill the height
  but not the width of their 8 x 8 frame, so a horizontal shift loses only ~3% of the ink on average).

Tasks (:data:`TASKS`: their classes; :func:`task_label`), each with its own label space:

- ``digit``: 10-way, label = the digit;
- ``parity``: 2-way, 0 ``even`` (0, 2, 4, 6, 8), 1 ``odd``;
- ``at_least_5``: 2-way, 0 ``below_5`` (0..4), 1 ``at_least_5`` (5..9);
- ``loops``: 3-way, the closed loops of the digit's usual handwritten shape: 0 loops for 1, 2, 3, 5, 7; 1 loop for
  0, 4, 6, 9; 2 loops for 8 (:data:`LOOPS`).

Each data info is ``{'img': uint8 (3, 32, 32), 'gt_label': int, 'task': str, 'domain': str, 'digit': int,
'source_idx': int}``; :class:`~petl_vision.datasets.transforms.PackInputs` packs ``task`` beside the label, so a
multi-task model can route a batch of several tasks. The split is recorded with
:func:`~petl_vision.datasets.splits.record_split` (members: ``source_idx``), so a loader built with another
``seed`` that would hand out a live loader's held-out images for training is refused.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from petl_vision.datasets.array_dataset import ArrayImageDataset
from petl_vision.datasets.digits import digits_arrays
from petl_vision.datasets.splits import record_split
from petl_vision.registry import DATASETS

IMG_SIZE = 32
DOMAINS = ('upright', 'rotated_30', 'rotated_60', 'rotated_90', 'inverted', 'thick', 'thin', 'blurred', 'noisy',
           'shifted')
LOOPS = (1, 0, 0, 0, 1, 0, 1, 0, 2, 1)  # closed loops of digit 0..9
TASKS: dict[str, tuple[str, ...]] = {
    'digit': tuple(str(d) for d in range(10)),
    'parity': ('even', 'odd'),
    'at_least_5': ('below_5', 'at_least_5'),
    'loops': ('0_loops', '1_loop', '2_loops'),
}
_LABELS: dict[str, tuple[int, ...]] = {
    'digit': tuple(range(10)),
    'parity': tuple(d % 2 for d in range(10)),
    'at_least_5': tuple(int(d >= 5) for d in range(10)),
    'loops': LOOPS,
}
SPLITS = ('train', 'val', 'test')
TEST_PER_DIGIT = 5  # per domain, from the 70 held-out images of each digit (7 per domain)
VAL_PER_DIGIT = 2
BLUR_SIGMA = 1.5
NOISE_STD = 64.0  # grey levels (a quarter of the range)
NOISE_SEED = 14
SHIFT_PX = 6
SOURCE = 'petl_vision.datasets.digits_multitask'


def task_label(task: str, digit: int) -> int:
    """The label of ``digit`` (0..9) in ``task``'s label space (see :data:`TASKS`)."""
    return _LABELS[task][digit]


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Float images (N, C, H, W) rotated counter-clockwise by ``degrees`` (bilinear, border pixels repeated)."""
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(x, grid, padding_mode='border', align_corners=False)


def dilate(x: torch.Tensor) -> torch.Tensor:
    """Grey dilation over 3 x 3 pixels of float images (N, C, H, W): strokes one pixel thicker on every side."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def erode(x: torch.Tensor) -> torch.Tensor:
    """Grey erosion over 3 x 3 pixels of float images (N, C, H, W); pixels outside the image are ignored."""
    return -F.max_pool2d(-x, 3, stride=1, padding=1)


def gaussian_blur(x: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of float images (N, C, H, W), edges replicated."""
    radius = math.ceil(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-t.square() / (2 * sigma ** 2))
    k = k / k.sum()
    n, c, h, w = x.shape
    y = F.pad(x.reshape(n * c, 1, h, w), (radius,) * 4, mode='replicate')  # (N C, 1, H + 2r, W + 2r)
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))  # rows, then columns
    return y.reshape(n, c, h, w)


def shift_right(x: torch.Tensor, pixels: int = SHIFT_PX) -> torch.Tensor:
    """Float images (N, C, H, W) moved ``pixels`` to the right; zero (background) enters on the left."""
    return F.pad(x, (pixels, -pixels))


@functools.lru_cache(maxsize=1)
def _noise() -> torch.Tensor:
    """Fixed noise of every digit image, float32 (1797, 1, 32, 32), std :data:`NOISE_STD`."""
    n = len(digits_arrays(IMG_SIZE)[1])
    rng = np.random.default_rng(NOISE_SEED)
    return torch.from_numpy(rng.standard_normal((n, 1, IMG_SIZE, IMG_SIZE), dtype=np.float32) * NOISE_STD)


DomainOp = Callable[[torch.Tensor, np.ndarray], torch.Tensor]
DOMAIN_OPS: dict[str, DomainOp] = {
    'upright': lambda x, idx: x,
    'rotated_30': lambda x, idx: rotate(x, 30.0),
    'rotated_60': lambda x, idx: rotate(x, 60.0),
    'rotated_90': lambda x, idx: rotate(x, 90.0),
    'inverted': lambda x, idx: 255.0 - x,
    'thick': lambda x, idx: dilate(x),
    'thin': lambda x, idx: erode(x),
    'blurred': lambda x, idx: gaussian_blur(x),
    'noisy': lambda x, idx: x + _noise()[torch.from_numpy(idx)],
    'shifted': lambda x, idx: shift_right(x),
}


def domain_images(domain: str, source_idx: Sequence[int] | np.ndarray) -> np.ndarray:
    """The digits ``source_idx`` (indices in ``load_digits()``) seen in ``domain``: uint8 (N, 3, 32, 32)."""
    if domain not in DOMAIN_OPS:
        raise ValueError(f'unknown domain {domain!r}; known: {DOMAINS}')
    idx = np.asarray(source_idx, dtype=np.int64)
    grey = torch.from_numpy(digits_arrays(IMG_SIZE)[0][idx, :1].astype(np.float32))  # (N, 1, 32, 32)
    out = DOMAIN_OPS[domain](grey, idx).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(out.expand(-1, 3, -1, -1).numpy())


@functools.lru_cache(maxsize=4)
def split_members(seed: int) -> dict[tuple[str, str, int], np.ndarray]:
    """``{(domain, split, digit): source indices}`` for every domain, split and digit, drawn with ``seed``.

    The order within an entry is the generator's (the first ``n`` train images of a digit are its ``n``-shot set).
    """
    from petl_vision.demo import TARGET_PER_CLASS, _pools

    labels = digits_arrays(IMG_SIZE)[1]
    source, target = _pools(labels)  # pretraining pool (S,), held-out pool (10, 70) grouped by digit
    per_domain = TARGET_PER_CLASS // len(DOMAINS)
    members = {}
    for digit in range(10):
        rng = np.random.default_rng((seed, digit))
        held = rng.permutation(target[digit]).reshape(len(DOMAINS), per_domain)
        parts = np.array_split(rng.permutation(source[labels[source] == digit]), len(DOMAINS))
        for k, domain in enumerate(DOMAINS):
            members[domain, 'test', digit] = held[k, :TEST_PER_DIGIT]
            members[domain, 'val', digit] = held[k, TEST_PER_DIGIT:TEST_PER_DIGIT + VAL_PER_DIGIT]
            members[domain, 'train', digit] = parts[(k + digit) % len(DOMAINS)]
    return members


def _interleave(lists: Sequence[np.ndarray]) -> np.ndarray:
    """Round-robin merge (first items of every list, then the second ones, ...): shots spread over the digits."""
    longest = max(len(a) for a in lists)
    return np.array([a[i] for i in range(longest) for a in lists if i < len(a)], dtype=np.int64)


@DATASETS.register_module()
class DigitsMultiTask(ArrayImageDataset):
    """One task of the digits composition demo on one or several domains (see the module docstring).

    Args:
        task: one of :data:`TASKS` (``'digit'``, ``'parity'``, ``'at_least_5'``, ``'loops'``).
        domain: one of :data:`DOMAINS`, a list of them, or ``'all'``.
        split: ``'train'``, ``'val'`` or ``'test'``.
        shots: ``train`` only: keep ``shots`` images per class of ``task`` in each domain, taken in turn from the
            class's digits (``parity`` 4-shot: one 0, 2, 4, 6 for ``even``); nested (5 shots inside 10).
        seed: seed of the split, the same for every loader of a run (the split registry refuses a mix).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).
    """

    SPLITS: ClassVar[tuple[str, ...]] = SPLITS

    def __init__(self, task: str = 'digit', domain: str | Sequence[str] = 'upright', split: str = 'train',
                 shots: int | None = None, seed: int = 0, **kwargs) -> None:
        self.task, self.domains = _check_task(task), _check_domains(domain)
        if split not in SPLITS:
            raise ValueError(f"DigitsMultiTask split must be one of {SPLITS}, got '{split}'")
        if shots is not None and (split != 'train' or isinstance(shots, bool) or not isinstance(shots, int)
                                  or shots < 1):
            raise ValueError(f"shots must be a positive int and limits the 'train' split only; got shots={shots!r} "
                             f"with split='{split}'")
        self.split, self.shots, self.seed = split, shots, seed
        metainfo = {'classes': TASKS[task], 'domains': self.domains,  # (a str value would be read as a file name)
                    **(kwargs.pop('metainfo', None) or {})}
        kwargs.setdefault('serialize_data', False)
        super().__init__(metainfo=metainfo, **kwargs)

    def _domain_indices(self, domain: str) -> np.ndarray:
        """Source indices of ``domain`` in this split, grouped by class of the task (``shots`` of each)."""
        members = split_members(self.seed)
        chosen = []
        for label in range(len(TASKS[self.task])):
            digits = [d for d in range(10) if task_label(self.task, d) == label]
            idx = _interleave([members[domain, self.split, d] for d in digits])
            if self.shots is not None:
                if self.shots > len(idx):
                    raise ValueError(f'{domain!r} has {len(idx)} train images of {self.task} class '
                                     f'{TASKS[self.task][label]!r}, fewer than shots={self.shots}; '
                                     f'use shots <= {self._max_shots(domain)}')
                idx = idx[:self.shots]
            chosen.append(idx)
        return np.concatenate(chosen)

    def _max_shots(self, domain: str) -> int:
        members = split_members(self.seed)
        return min(sum(len(members[domain, 'train', d]) for d in range(10) if task_label(self.task, d) == label)
                   for label in range(len(TASKS[self.task])))

    def load_data_list(self) -> list[dict]:
        labels = digits_arrays(IMG_SIZE)[1]
        infos = []
        for domain in self.domains:
            idx = self._domain_indices(domain)
            images = domain_images(domain, idx)
            infos += [{'img': img, 'gt_label': task_label(self.task, int(labels[i])), 'task': self.task,
                       'domain': domain, 'digit': int(labels[i]), 'source_idx': int(i)} for img, i in zip(images, idx)]
        record_split(self, SOURCE, self.split, [d['source_idx'] for d in infos], {'seed': self.seed})
        return infos


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f'unknown DigitsMultiTask task {task!r}; known: {tuple(TASKS)}')
    return task


def _check_domains(domain: str | Sequence[str]) -> tuple[str, ...]:
    domains = DOMAINS if domain == 'all' else (domain,) if isinstance(domain, str) else tuple(domain)
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown or not domains or len(set(domains)) != len(domains):
        raise ValueError(f"domain must be one of {DOMAINS}, a list of distinct ones or 'all'; got {domain!r}")
    return domains
