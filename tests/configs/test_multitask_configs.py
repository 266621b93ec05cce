"""The multi-task configs of ViT-B/16 (19 VTAB-1k tasks, 5 FGVC datasets): counts per task on the real model (meta
device), and their datasets built from fixture data in the real layouts agree with the model's heads."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from petl_vision.datasets import VTAB_TASKS
from petl_vision.registry import DATASETS, MODELS
from petl_vision.setup_env import register_all_modules
from tests.training.test_train_end_to_end import write_vtab

register_all_modules()
CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'multitask'
VIT_B = 85_798_656  # frozen ViT-B/16 without head (FACTS)
PER_TASK = {'lora': 294_912, 'vlm-adapter': 12 * (2 * 768 * 64 + 64 + 768)}


@pytest.mark.parametrize('path', sorted(CONFIGS.glob('*.py')), ids=lambda p: p.stem)
def test_per_task_counts_on_vit_b16(path):
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.pretrained = None
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    counts = model.parameter_counts()
    expected = PER_TASK[path.stem.split('_')[0]]
    assert counts['backbone'] == VIT_B
    assert {c['adapter'] for c in counts['per_task'].values()} == {expected}
    first = next(iter(cfg.model.tasks))
    assert counts['per_task'][first]['percent_of_backbone'] == pytest.approx(100 * expected / VIT_B)
    heads = {t: c['head'] for t, c in counts['per_task'].items()}
    assert heads == {t: 769 * n for t, n in cfg.model.tasks.items()}


def test_the_vtab_config_reads_all_19_tasks_in_noahs_layout(tmp_path):
    for task in VTAB_TASKS:
        write_vtab(tmp_path, task)
    cfg = Config.fromfile(str(CONFIGS / 'lora_vit-b16-in21k_vtab1k-19tasks.py'))
    spec = cfg.train_dataloader.dataset
    for ds in spec.datasets.values():
        ds.data_root = str(tmp_path)
    dataset = DATASETS.build(spec)
    assert dataset.num_classes == dict(cfg.model.tasks) == {t: n for t, (_, n) in VTAB_TASKS.items()}
