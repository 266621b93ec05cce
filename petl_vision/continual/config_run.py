"""A :class:`~petl_vision.continual.harness.ContinualRun` from a config file (``configs/continual/``).

Keys (an mmengine ``Config``; see ``configs/continual/README.md``)::

    sequence = dict(protocol='class', num_tasks=10, seed=1993, class_order=None,   # class-incremental, or
                    train=dict(type='CIFAR100', ...), test=dict(type='CIFAR100', split='test', ...))
    sequence = dict(protocol='domain', domains=[dict(name='upright', train=dict(...), test=dict(...)), ...])
    model = dict(model='vit_digits_demo', pretrained=True, num_classes=10, zero_head=True)  # build_timm_backbone
    adapter = dict(plan=[...], trainable=[])          # the per-task adapter
    recipe = dict(epochs=..., lr=..., weight_decay=..., batch_size=..., max_iters=None, num_workers=0,
                  engine='mmengine')                # or 'loop': the harness's plain loop
    memory = dict(per_task=20, sampler='random')      # ReplayMemory
    router = dict(routers='model', mode='output', hidden=64, epochs=100, lr=1e-2)
    arrow = dict(top_k=4, temperature=1.0)
    methods = [...]                                   # of harness.METHODS
    seed = 0
    device = 'auto'                                   # cuda when available

Datasets are built with the project's registry (any mmengine classification dataset and pipeline ending in
``PackInputs``); samples are normalised with the backbone's pretrained mean and std. A class-incremental sequence
records its class order in the run (``sequence.json``).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from mmengine.config import Config

import petl_vision.continual.digits  # noqa: F401  (registers DigitsInDomain)
from petl_vision.continual.harness import METHODS, ContinualRun, Recipe, Stage
from petl_vision.continual.memory import ReplayMemory
from petl_vision.continual.sequences import (TaskSequence, TaskSubset, class_incremental, dataset_labels,
                                             domain_incremental, task_indices)

REQUIRED = ('sequence', 'model', 'adapter', 'recipe')


class Normalized(torch.utils.data.Dataset):
    """``(x, label)`` from a dataset of packed samples: ``inputs`` uint8 (3, H, W) -> ``(x - mean) / std``."""

    def __init__(self, dataset, mean: list[float], std: list[float]) -> None:
        self.dataset = dataset
        self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def metainfo(self) -> dict:
        """The source dataset's (class names), which mmengine's Runner reads."""
        inner = getattr(self.dataset, 'dataset', self.dataset)  # a TaskSubset wraps the source dataset
        return dict(getattr(inner, 'metainfo', {}))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        sample = self.dataset[i]
        return (sample['inputs'].float() - self.mean) / self.std, int(sample['data_samples'])


def build_dataset(cfg: dict):
    """A dataset of the project's registry, its pipeline's transforms looked up in the project's scope."""
    from mmengine.registry import DefaultScope

    from petl_vision.registry import DATASETS
    from petl_vision.setup_env import register_all_modules

    register_all_modules()
    with DefaultScope.overwrite_default_scope('petl_vision'):
        return DATASETS.build(dict(cfg))


def build_model(cfg: dict) -> torch.nn.Module:
    """The backbone (:func:`~petl_vision.models.backbone_builder.build_timm_backbone`), head zeroed with
    ``zero_head=True`` (each adapter's head delta is then its whole classifier)."""
    from petl_vision.models.backbone_builder import build_timm_backbone

    cfg = dict(cfg)
    zero_head = cfg.pop('zero_head', True)
    model = build_timm_backbone(**cfg)
    if zero_head:
        head = model.get_classifier()
        with torch.no_grad():
            for p in head.parameters():
                p.zero_()
    return model.eval()


def class_stages(seq: dict, mean, std, num_classes: int) -> tuple[list[Stage], TaskSequence]:
    train, test = build_dataset(seq['train']), build_dataset(seq['test'])
    classes = len(train.metainfo['classes'])
    if classes != num_classes:
        raise ValueError(f"the dataset has {classes} classes but model.num_classes={num_classes}; set "
                         f'model.num_classes={classes}')
    sequence = class_incremental(classes, seq['num_tasks'], seed=seq.get('seed'), class_order=seq.get('class_order'))
    labels = {'train': dataset_labels(train), 'test': dataset_labels(test)}
    stages = []
    for t, name in enumerate(sequence.names):
        parts = [Normalized(TaskSubset(data, task_indices(labels[split], sequence, t), sequence.label_map(), name),
                            mean, std) for split, data in (('train', train), ('test', test))]
        stages.append(Stage(name, parts[0], parts[1], tuple(sequence.mapped_classes(t))))
    return stages, sequence


def domain_stages(seq: dict, mean, std, num_classes: int) -> tuple[list[Stage], TaskSequence]:
    domains = seq['domains']
    sequence = domain_incremental([d['name'] for d in domains], num_classes)
    stages = [Stage(d['name'], Normalized(build_dataset(d['train']), mean, std),
                    Normalized(build_dataset(d['test']), mean, std), tuple(range(num_classes))) for d in domains]
    return stages, sequence


def check_config(cfg: Config) -> None:
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise KeyError(f'the continual config lacks {missing}; see configs/continual/README.md for the keys')
    protocol = cfg.sequence.get('protocol')
    if protocol not in ('class', 'domain'):
        raise ValueError(f"sequence.protocol must be 'class' or 'domain', got {protocol!r}")
    unknown = [m for m in cfg.get('methods', METHODS) if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown methods {unknown} in the config; choose from {METHODS}')


def build_run(cfg: Config, progress: Callable[[str], None] = print, work_dir=None
              ) -> tuple[ContinualRun, TaskSequence]:
    """The run a config describes, and its task sequence (class order recorded); ``work_dir``: where each stage's
    Runner logs (None: temporary folders)."""
    from petl_vision.models.backbone_builder import pretrained_mean_std

    check_config(cfg)
    device = cfg.get('device', 'auto')
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if device == 'auto' else device
    model = build_model(cfg.model)
    mean, std = pretrained_mean_std(model)
    num_classes = model.num_classes
    build = class_stages if cfg.sequence.protocol == 'class' else domain_stages
    stages, sequence = build(cfg.sequence, mean, std, num_classes)
    seed = cfg.get('seed', 0)
    memory = ReplayMemory(**{'seed': seed, **cfg.get('memory', dict(per_task=20))})
    run = ContinualRun(model, stages, list(cfg.adapter.plan), num_classes, protocol=cfg.sequence.protocol,
                       trainable=tuple(cfg.adapter.get('trainable', ())), methods=tuple(cfg.get('methods', METHODS)),
                       recipe=Recipe(**cfg.recipe), memory=memory, router=dict(cfg.get('router', {})),
                       arrow=dict(cfg.get('arrow', {})), seed=seed, device=device, progress=progress,
                       work_dir=work_dir)
    return run, sequence
