"""configs/library/: one LoRA adapter per FGVC dataset (5) and VTAB-1k task (19) on ViT-B/16 IN-21k, each its
single-task recipe with the adapter named after the task and the head apart, all writing into one library."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from petl_vision.datasets import VTAB_TASKS
from petl_vision.registry import HOOKS, MODELS
from petl_vision.setup_env import register_all_modules

register_all_modules()
CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LIBRARY = sorted((CONFIGS / 'library').glob('*.py'))
FGVC = ('cars', 'cub', 'dogs', 'flowers', 'nabirds')
VIT_B = 85_798_656  # frozen ViT-B/16 without head
LORA_QV_R8 = 294_912  # rank 8 on q and v of the 12 qkv layers


def recipe(path: Path) -> Path:
    """The single-task config a library config builds on (its one ``_base_``)."""
    line = next(x for x in path.read_text().splitlines() if x.startswith('_base_'))
    return (path.parent / line.split("'")[1]).resolve()


def test_one_config_per_fgvc_dataset_and_vtab_task_all_into_one_library():
    names = set()
    libraries = set()
    for path in LIBRARY:
        cfg = Config.fromfile(str(path))
        (task,) = cfg.model.tasks
        names.add(task)
        hook = next(h for h in cfg.custom_hooks if h.type == 'AdapterLibraryHook')
        libraries.add(hook.library)
    assert names == set(FGVC) | set(VTAB_TASKS) and len(LIBRARY) == 24
    assert libraries == {'work_dirs/library_vit-b16-in21k'}


@pytest.mark.parametrize('path', LIBRARY, ids=lambda p: p.stem)
def test_library_config_builds_with_its_recipe_and_hook(path):
    cfg, base = Config.fromfile(str(path)), Config.fromfile(str(recipe(path)))
    (task, classes), = cfg.model.tasks.items()
    assert classes == base.model.backbone.num_classes
    assert cfg.model.backbone == base.model.backbone and cfg.model.plan == base.model.plan
    assert cfg.optim_wrapper == base.optim_wrapper and cfg.param_scheduler == base.param_scheduler
    assert cfg.train_cfg == base.train_cfg and cfg.train_dataloader == base.train_dataloader
    assert cfg.val_evaluator == base.val_evaluator
    hook = HOOKS.build(next(h for h in cfg.custom_hooks if h.type == 'AdapterLibraryHook'))
    assert hook.library == 'work_dirs/library_vit-b16-in21k' and hook.names.get(task, task) == task
    cfg.model.backbone.pretrained = None
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    counts = model.parameter_counts()
    assert counts['backbone'] == VIT_B
    assert counts['per_task'] == {task: {'adapter': LORA_QV_R8, 'head': 769 * classes,
                                         'percent_of_backbone': pytest.approx(100 * LORA_QV_R8 / VIT_B)}}
