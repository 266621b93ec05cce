"""Pretrain a quick-start demo backbone on digits and (``--evaluate``) measure PETL on the shifted target task.

    python tools/make_demo_backbone.py              # writes petl_vision/demo/digits_vit_tiny.pth, prints sha256
    python tools/make_demo_backbone.py --evaluate   # also: linear probe, full fine-tuning and PETL presets
    python tools/make_demo_backbone.py --arch swin  # the Swin of the dense demo: digits_swin_tiny.pth

The source data, the target task and the architecture are defined in :mod:`petl_vision.demo`. Everything is
seeded; on another CPU or thread count the float results (and so the file's sha256) may differ slightly.
"""
import argparse
import copy
import hashlib
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.datasets.transforms import random_affine
from petl_vision.demo import DEMO_CHECKPOINT, DEMO_SWIN_CHECKPOINT, build_demo_backbone, build_demo_swin, \
    demo_backbone_kwargs, demo_swin_kwargs, source_arrays, target_task_arrays

# name -> (builder (num_classes, pretrained), checkpoint it writes, its architecture arguments); one recipe for both
ARCHS = {
    'vit': (build_demo_backbone, DEMO_CHECKPOINT, demo_backbone_kwargs),
    'swin': (build_demo_swin, DEMO_SWIN_CHECKPOINT, demo_swin_kwargs),
}

PRETRAIN = {'epochs': 40, 'batch_size': 64, 'lr': 1e-3, 'weight_decay': 0.05}
# One recipe for every method; only the learning rate of the backbone/tuner parameters differs per family,
# as in PETL papers. The new head always trains at HEAD_LR.
TRANSFER = {'epochs': 30, 'batch_size': 32, 'weight_decay': 1e-4}
HEAD_LR = 3e-3
METHODS = {  # name -> (preset, pretrained backbone, lr of the non-head trainable parameters)
    'linear': ('linear', True, None),
    'full': ('full', True, 1e-4),
    'bitfit': ('bitfit', True, 3e-3),
    'lora': ('lora', True, 3e-3),
    'adapter': ('adapter', True, 3e-3),
    'adaptformer': ('adaptformer', True, 3e-3),
    'ssf': ('ssf', True, 3e-3),
    'vpt_deep': ('vpt_deep', True, 3e-3),
    'scratch': ('full', False, 1e-3),  # reference: full training from random weights
}


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, 3, H, W) normalised to [-1, 1]."""
    return torch.as_tensor(images).float().div(255).sub(0.5).div(0.5)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random small affine jitter of a batch (B, 3, H, W): rotation +-10 deg, scale 0.9..1.1, shift +-10%."""
    return random_affine(x, degrees=10, translate=0.1, scale=(0.9, 1.1), generator=gen)


def train(model: nn.Module, groups: list[dict], images: np.ndarray, labels: np.ndarray, epochs: int,
          batch_size: int, weight_decay: float, seed: int, val: tuple[np.ndarray, np.ndarray] | None = None
          ) -> tuple[nn.Module, float]:
    """AdamW with a cosine schedule; with ``val``, returns the weights of the epoch with the best val accuracy."""
    gen = torch.Generator().manual_seed(seed)
    x, y = to_input(images), torch.as_tensor(labels)
    steps = epochs * math.ceil(len(y) / batch_size)
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    best_acc, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(augment(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if val is not None and (acc := accuracy(model, *val)) > best_acc:
            best_acc, best_state = acc, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best_acc


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    preds = torch.cat([model(to_input(b)).argmax(1) for b in torch.as_tensor(images).split(256)])
    return (preds == torch.as_tensor(labels)).float().mean().item()


def pretrain(arch: str) -> str:
    """Train ``arch`` on the source pool, write its headless state dict to its checkpoint, return the sha256."""
    build, checkpoint, _ = ARCHS[arch]
    torch.manual_seed(0)
    images, labels = source_arrays()
    model = build(pretrained=False)
    groups = [{'params': list(model.parameters()), 'lr': PRETRAIN['lr']}]
    train(model, groups, images, labels, PRETRAIN['epochs'], PRETRAIN['batch_size'], PRETRAIN['weight_decay'], 0)
    print(f'source train accuracy (no augmentation): {accuracy(model, images, labels):.3f}')
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('head.')}
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, checkpoint)
    return hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def transfer(arch: str, method: str, seed: int, shots: int) -> dict[str, float]:
    """Fine-tune ``arch`` with ``method`` on the target task; test accuracy at the epoch of best val accuracy."""
    preset, pretrained, lr = METHODS[method]
    torch.manual_seed(seed)
    model = pv.apply_tuners(ARCHS[arch][0](pretrained=pretrained), preset, trainable=('head',))
    head = [p for n, p in model.named_parameters() if n.startswith('head.')]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith('head.')]
    groups = [{'params': head, 'lr': HEAD_LR}] + ([{'params': rest, 'lr': lr}] if rest else [])
    start = time.perf_counter()
    model, val_acc = train(model, groups, *target_task_arrays('train', seed, shots), seed=seed,
                           val=target_task_arrays('val', seed), **TRANSFER)
    return {'val': val_acc, 'test': accuracy(model, *target_task_arrays('test')),
            'trainable': pv.count_parameters(model)['trainable'], 'seconds': time.perf_counter() - start}


def evaluate(arch: str, seeds: list[int], shots: int) -> None:
    print(f'target: {shots} shots per class, {TRANSFER}, head lr {HEAD_LR}; mean +- std over seeds {seeds}')
    print('| method | lr | trainable params | val acc | test acc | s per run |\n|---|---|---|---|---|---|')
    for method, (_, _, lr) in METHODS.items():
        runs = [transfer(arch, method, seed, shots) for seed in seeds]
        val, test = np.array([r['val'] for r in runs]), np.array([r['test'] for r in runs])
        print(f'| {method} | {lr or "-"} | {runs[0]["trainable"]:,} | {val.mean():.3f} | '
              f'{test.mean():.3f} +- {test.std():.3f} | {np.mean([r["seconds"] for r in runs]):.1f} |', flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', choices=sorted(ARCHS), default='vit',
                        help='vit: the quick start\'s ViT; swin: the Swin of the dense multi-task demo')
    parser.add_argument('--evaluate', action='store_true', help='measure transfer on the target task too')
    parser.add_argument('--skip-pretrain', action='store_true', help='evaluate the existing checkpoint')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='target-task seeds (--evaluate)')
    parser.add_argument('--shots', type=int, default=20, help='training images per class (--evaluate)')
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    build, checkpoint, kwargs = ARCHS[args.arch]
    if not args.skip_pretrain:
        start = time.perf_counter()
        sha = pretrain(args.arch)
        print(f'wrote {checkpoint} in {time.perf_counter() - start:.0f} s\nsha256 {sha}\n'
              f'architecture {type(build(pretrained=False)).__name__}(**{kwargs()}), head removed')
    if args.evaluate:
        evaluate(args.arch, args.seeds, args.shots)


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
