"""The split CIFAR-100 and ImageNet-R continual configs build and run their first stage for one iteration on fixture
data written in the real on-disk formats (cifar-100-python pickles; imagenet-r/<wnid>/*.jpg), with the tiny
ViT-B/16-layout backbone of tests/training in place of the zoo:// weights (no download)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import petl_vision as pv
from petl_vision.continual.config_run import build_run
from tests.datasets.test_classification_datasets import write_cifar100
from tests.training.test_train_end_to_end import TINY_BACKBONE

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'continual'


def write_imagenet_r(root: Path, classes: int = 200, per_class: int = 5) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / 'imagenet-r' / f'n{c:08d}'
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(folder / f'art_{i}.jpg')


CASES = {'lora_vit-b16-in21k_split-cifar100-10x10.py': (100, 10, lambda root: write_cifar100(root, 200, 100)),
         'lora_vit-b16-in21k_imagenet-r-10x20.py': (200, 20, write_imagenet_r)}


@pytest.mark.parametrize('name', list(CASES))
def test_config_builds_and_runs_one_iteration(name, tmp_path):
    num_classes, per_task, write = CASES[name]
    write(tmp_path)
    cfg = Config.fromfile(str(CONFIGS / name))
    assert cfg.sequence.num_tasks == 10 and cfg.model.num_classes == num_classes
    assert cfg.model.pretrained == 'zoo://vit_base_patch16_224.in21k'
    assert (cfg.recipe.lr, cfg.recipe.batch_size, cfg.adapter.plan[0].rank) == (5e-4, 128, 10)  # InfLoRA's
    cfg.merge_from_dict({'model': {**TINY_BACKBONE, 'num_classes': num_classes}, 'device': 'cpu',
                         'sequence.train.data_root': str(tmp_path), 'sequence.test.data_root': str(tmp_path),
                         'recipe.max_iters': 1, 'recipe.batch_size': 4, 'recipe.num_workers': 0,
                         'memory.per_task': 4, 'router.epochs': 2})
    run, sequence = build_run(cfg, progress=lambda s: None)
    assert len(run.stages) == 10 and all(len(s.classes) == per_task for s in run.stages)
    assert sequence.class_order == tuple(range(num_classes))  # label order, recorded
    x, y = run.stages[0].train[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and y in run.stages[0].classes
    torch.manual_seed(0)
    run.run(stop_after=1)
    head_B = [t.lora_B for a, _, t in run.model.head.all_tuners() if a == 'task0']
    assert head_B and head_B[0].abs().sum() > 0  # one optimizer step moved the zero-initialised B
    assert run.completed == 1 and not np.isnan(run.R['l2r'][0, 0]) and np.isnan(run.R['l2r'][1, 0])
    assert pv.list_adapters(run.model) == ['task0', 'seq_ft']
