"""Write the per-method, per-dataset configs for ViT-B/16 (ImageNet-21k) from one recipe table.

    python tools/misc/make_method_configs.py                 # rewrites configs/<method>/...
    python tools/misc/make_method_configs.py --out-dir DIR   # writes DIR/<method>/... (the tests compare)

``RECIPES[method][dataset]`` is the record of what each method's authors (or the benchmark that ran
it) trained with: lr, weight decay, drop path, total batch size, epochs, warm-up epochs, label
smoothing, optimizer, and the ``source`` (repository + path, with the commit read) of every value.
Edit the tables here and re-run; never edit the generated files. Values the sources leave unset are
not set here either: the config then inherits the base config's value (batch size from
``configs/_base_/datasets``, 100 epochs / 10 warm-up from ``configs/_base_/schedules``). The cosine schedule
sets no end: it runs to ``train_cfg.max_epochs``, so ``--cfg-options train_cfg.max_epochs=N`` shortens a run.

Batch sizes are the *total* batch of the source (per-GPU batch x GPUs); mmengine's ``batch_size`` is
per GPU, so divide by the number of GPUs when training on several.
"""
import argparse
import textwrap
from pathlib import Path

from petl_vision.datasets import CUB200, VTAB_TASKS, NABirds, OxfordFlowers, StanfordCars, StanfordDogs

CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs'
METHODS = ('linear', 'full', 'bitfit', 'lora', 'adapter', 'houlsby', 'adaptformer', 'vpt_shallow', 'vpt_deep',
           'prefix', 'ssf', 'utuning', 'bypass')
NUM_CLASSES = {'cifar100': 100, 'cub': CUB200.NUM_CLASSES, 'nabirds': NABirds.NUM_CLASSES,
               'flowers': OxfordFlowers.NUM_CLASSES, 'dogs': StanfordDogs.NUM_CLASSES, 'cars': StanfordCars.NUM_CLASSES,
               **{task: n for task, (_, n) in VTAB_TASKS.items()}}
FGVC = ('cub', 'nabirds', 'flowers', 'dogs', 'cars')
DATASETS = ('cifar100', *FGVC, *VTAB_TASKS)

SSF = 'dongzelian/SSF'
VPETL = 'synbol/Parameter-Efficient-Transfer-Learning-Benchmark'
NOAH = 'ZhangYuanhan-AI/NOAH'
VPT = 'KMnP/vpt'
# SSF's train.py (timm's) defaults --smoothing 0.1, --mixup 0.8, --cutmix 1.0; the FGVC / CIFAR scripts
# do not override them (the VTAB scripts pass --mixup 0 --cutmix 0 --smoothing 0).
SSF_AUG_NOTE = ('label smoothing 0.1 = SSF train.py default; its mixup 0.8 / cutmix 1.0 defaults, RandAugment '
                'and model EMA are not reproduced')

# --- V-PETL Bench defaults: AdamW lr 1e-3, wd 1e-4, drop path 0.1 (argparse of its train scripts). ---------
# Used where no source publishes a per-dataset value; batch size and schedule then come from the base configs
# (V-PETL's yamls: 100 epochs, 10 warm-up).
VPETL_DEFAULT = dict(lr=1e-3, weight_decay=1e-4, drop_path=0.1,
                     source=f'{VPETL} ImageClassification/train/train_model_lora.py@055efb3 argparse defaults '
                            '(same in train_model_fulltuning.py)',
                     note='no published recipe for this method on this dataset: V-PETL Bench defaults')

# --- SSF (Lian et al., NeurIPS 2022): per-task scripts train_scripts/vit/vtab/<folder>/train_ssf.sh. ----------
# task: (lr, weight decay, drop path, total batch, epochs, commit read). Warm-up 10, --smoothing 0, no aug.
SSF_FOLDER = {'cifar': 'cifar_100', 'oxford_flowers102': 'flowers102', 'oxford_iiit_pet': 'pets'}
SSF_VTAB = {
    'cifar': (5e-3, 5e-5, 0.0, 128, 200, '06f45ce'),
    'caltech101': (1e-3, 5e-2, 0.1, 128, 250, '06f45ce'),
    'dtd': (5e-3, 5e-5, 0.0, 64, 100, '28a70a6'),
    'oxford_flowers102': (5e-3, 5e-5, 0.0, 64, 100, '28a70a6'),
    'oxford_iiit_pet': (5e-3, 5e-5, 0.0, 128, 250, '06f45ce'),
    'svhn': (1e-2, 5e-5, 0.0, 32, 250, '06f45ce'),
    'sun397': (5e-3, 5e-5, 0.0, 128, 200, '06f45ce'),
    'patch_camelyon': (5e-3, 5e-5, 0.0, 64, 100, '28a70a6'),
    'eurosat': (3e-3, 5e-2, 0.2, 64, 100, '28a70a6'),
    'resisc45': (2e-3, 5e-5, 0.1, 32, 250, '06f45ce'),
    'diabetic_retinopathy': (5e-3, 5e-5, 0.2, 64, 100, '28a70a6'),
    'clevr_count': (2e-3, 5e-2, 0.1, 64, 100, '28a70a6'),
    'clevr_dist': (5e-2, 5e-2, 0.1, 64, 100, '28a70a6'),
    'dmlab': (5e-3, 5e-5, 0.1, 64, 100, '28a70a6'),
    'kitti': (1e-2, 5e-5, 0.0, 128, 250, '06f45ce'),
    'dsprites_loc': (1e-2, 5e-5, 0.0, 64, 100, '28a70a6'),
    'dsprites_ori': (5e-3, 5e-5, 0.2, 32, 250, '06f45ce'),
    'smallnorb_azi': (2e-2, 5e-5, 0.1, 128, 200, '06f45ce'),
    'smallnorb_ele': (5e-3, 5e-2, 0.2, 128, 250, '06f45ce'),
}
# SSF on FGVC / CIFAR-100: (script, lr, weight decay, drop path, total batch, commit); 100 epochs, 10 warm-up.
SSF_OTHER = {
    'cub': ('fgvc/cub_2011/train_ssf.sh', 1e-2, 5e-2, 0.0, 64, '28a70a6'),
    'nabirds': ('fgvc/nabirds/train_ssf.sh', 2e-4, 5e-2, 0.1, 64, '28a70a6'),
    'flowers': ('fgvc/oxford_flowers/train_ssf.sh', 1e-2, 5e-2, 0.1, 64, '28a70a6'),
    'dogs': ('fgvc/stanford_dogs/train_ssf.sh', 2.5e-4, 5e-2, 0.0, 64, '28a70a6'),
    'cars': ('fgvc/stanford_cars/train_ssf.sh', 2e-2, 5e-2, 0.0, 64, '28a70a6'),
    'cifar100': ('cifar_100/train_ssf.sh', 1e-3, 5e-2, 0.0, 256, '28a70a6'),
}

# --- Linear probing, SSF repo train_scripts/vit/vtab/<folder>/train_linear_probe.sh: (lr, wd, drop path, commit).
# 32/GPU x 2 GPUs, 100 epochs, 10 warm-up, --smoothing 0.
SSF_LINEAR_VTAB = {
    'cifar': (5e-3, 5e-5, 0.0, '44cb234'),
    'caltech101': (1e-3, 5e-2, 0.1, 'c84c097'),
    'dtd': (5e-3, 5e-5, 0.0, '28a70a6'),
    'oxford_flowers102': (5e-3, 5e-5, 0.0, '28a70a6'),
    'oxford_iiit_pet': (5e-3, 5e-5, 0.0, '28a70a6'),
    'svhn': (1e-2, 5e-5, 0.0, 'c84c097'),
    'sun397': (5e-3, 5e-5, 0.0, '44cb234'),
    'patch_camelyon': (5e-3, 5e-5, 0.0, '44cb234'),
    'eurosat': (3e-3, 5e-2, 0.2, '28a70a6'),
    'resisc45': (2e-3, 5e-5, 0.1, 'c84c097'),
    'diabetic_retinopathy': (5e-3, 5e-5, 0.2, 'c84c097'),
    'clevr_count': (2e-3, 5e-2, 0.1, '44cb234'),
    'clevr_dist': (5e-2, 5e-2, 0.1, '28a70a6'),
    'dmlab': (5e-3, 5e-5, 0.1, '44cb234'),
    'kitti': (1e-2, 5e-5, 0.0, '44cb234'),
    'dsprites_loc': (1e-2, 5e-5, 0.0, '28a70a6'),
    'dsprites_ori': (5e-3, 5e-5, 0.2, '44cb234'),
    'smallnorb_azi': (2e-2, 5e-5, 0.1, '28a70a6'),
    'smallnorb_ele': (5e-3, 5e-2, 0.2, '28a70a6'),
}

# --- VPT repo configs (Jia et al., ECCV 2022): configs/{linear,prompt,finetune}/<name>.yaml, commit 7f3942e. ----
# (lr, weight decay). base-linear.yaml: SGD momentum 0.9, batch 1024, 10 warm-up, 100 epochs.
# base-prompt.yaml: SGD momentum 0.9, batch 128, 10 warm-up, 100 epochs. base-finetune.yaml: AdamW, batch 384,
# 5 warm-up, 100 epochs. The paper's per-task grid-search winners are not in the repository.
VPT_NAME = {'cub': 'cub', 'nabirds': 'nabirds', 'flowers': 'flowers', 'dogs': 'dogs', 'cars': 'cars'}
VPT_LINEAR = {'cub': (0.1, 1e-2), 'nabirds': (0.1, 1e-2), 'flowers': (1e-3, 1e-4), 'dogs': (1e-3, 1e-4),
              'cars': (1e-3, 1e-4)}
VPT_PROMPT = {'cub': (0.1, 1e-2), 'nabirds': (0.1, 1e-2), 'flowers': (1e-3, 1e-4), 'dogs': (1e-3, 1e-4),
              'cars': (1e-3, 1e-4)}
VPT_FINETUNE = {'cub': (3.75e-3, 1e-2), 'nabirds': (3.75e-3, 1e-2), 'flowers': (1e-3, 1e-4), 'dogs': (3.75e-3, 1e-3),
                'cars': (3.75e-2, 1e-3)}

# --- V-PETL Bench full fine-tuning on VTAB: configs/model_fulltuning/vtab/<task>.yaml@e7bd087 (batch 64,
# 100 epochs, 10 warm-up, label smoothing below) + train_model_fulltuning.py argparse (lr 1e-3, wd 1e-4, dpr 0.1).
VPETL_YAML = {'cifar': 'cifar100'}
VPETL_FULL_VTAB_SMOOTHING = {
    'cifar': 0.1, 'caltech101': 0.1, 'dtd': 0.1, 'oxford_flowers102': 0.1, 'oxford_iiit_pet': 0.1, 'svhn': 0.1,
    'sun397': 0.1, 'patch_camelyon': 0.1, 'eurosat': 0.1, 'resisc45': 0.1, 'diabetic_retinopathy': 0.1,
    'clevr_count': 0.0, 'clevr_dist': 0.0, 'dmlab': 0.0, 'kitti': 0.1, 'dsprites_loc': 0.0, 'dsprites_ori': 0.0,
    'smallnorb_azi': 0.0, 'smallnorb_ele': 0.0,
}

# --- V-PETL Bench BitFit on VTAB: ImageClassification/train_scripts/vit/vtab/main_script/bitfit.sh@2f244c6. ----
# (lr, weight decay, drop path); batch 32, 100 epochs, 10 warm-up, --smoothing 0, no aug.
VPETL_BITFIT_VTAB = {
    'cifar': (5e-3, 5e-5, 0.0), 'caltech101': (1e-3, 5e-2, 0.1), 'dtd': (5e-3, 5e-5, 0.0),
    'oxford_flowers102': (5e-3, 5e-5, 0.0), 'oxford_iiit_pet': (5e-3, 5e-5, 0.0), 'svhn': (1e-2, 5e-5, 0.0),
    'sun397': (5e-3, 5e-5, 0.0), 'patch_camelyon': (5e-3, 5e-5, 0.0), 'eurosat': (3e-3, 5e-2, 0.2),
    'resisc45': (2e-3, 5e-5, 0.1), 'diabetic_retinopathy': (5e-3, 5e-5, 0.2), 'clevr_count': (2e-3, 5e-2, 0.1),
    'clevr_dist': (5e-2, 5e-2, 0.1), 'dmlab': (5e-3, 5e-5, 0.1), 'kitti': (1e-2, 5e-5, 0.0),
    'dsprites_loc': (1e-2, 5e-5, 0.0), 'dsprites_ori': (5e-3, 5e-5, 0.2), 'smallnorb_azi': (2e-2, 5e-5, 0.1),
    'smallnorb_ele': (5e-3, 5e-2, 0.2),
}

# --- V-PETL Bench LoRA on FGVC: configs/model_lora/fgvc/<name>.yaml@9eb439d: batch 128, 100 epochs, 10 warm-up,
# label smoothing 0; lr/wd/drop path: the argparse defaults of train/train_model_lora.py.
VPETL_FGVC_YAML = {'cub': 'CUB_200_2011', 'nabirds': 'nabirds', 'flowers': 'OxfordFlower', 'dogs': 'StanfordDogs',
                   'cars': 'StanfordCars'}

# --- NOAH (Zhang et al. 2022) baselines on VTAB: configs/<Method>/VTAB/slurm_train_<method>_vtab.sh@ded6834. ----
# One lr for all 19 tasks, wd 1e-4, batch 64, 100 epochs, --smoothing 0 (warm-up: not set there; base 10).
NOAH_VTAB = {
    'lora': dict(lr=5e-3, script='configs/LoRA/VTAB/slurm_train_lora_vtab.sh'),
    'adapter': dict(lr=5e-3, script='configs/Adapter/VTAB/slurm_train_adapter_vtab.sh'),
    'vpt': dict(lr=1e-3, script='configs/VPT/VTAB/slurm_train_vpt_vtab.sh',
                note='NOAH sweeps lr over {5e-3, 1e-3} and publishes no per-task choice; 1e-3 taken'),
}


def _ssf(dataset: str) -> dict:
    if dataset in SSF_VTAB:
        lr, wd, dp, batch, epochs, commit = SSF_VTAB[dataset]
        folder = SSF_FOLDER.get(dataset, dataset)
        return dict(lr=lr, weight_decay=wd, drop_path=dp, batch_size=batch, epochs=epochs, warmup=10,
                    label_smoothing=0.0, source=f'{SSF} train_scripts/vit/vtab/{folder}/train_ssf.sh@{commit}')
    script, lr, wd, dp, batch, commit = SSF_OTHER[dataset]
    return dict(lr=lr, weight_decay=wd, drop_path=dp, batch_size=batch, epochs=100, warmup=10, label_smoothing=0.1,
                source=f'{SSF} train_scripts/vit/{script}@{commit}', note=SSF_AUG_NOTE)


def _linear(dataset: str) -> dict:
    if dataset in SSF_LINEAR_VTAB:
        lr, wd, dp, commit = SSF_LINEAR_VTAB[dataset]
        folder = SSF_FOLDER.get(dataset, dataset)
        return dict(lr=lr, weight_decay=wd, drop_path=dp, batch_size=64, epochs=100, warmup=10, label_smoothing=0.0,
                    source=f'{SSF} train_scripts/vit/vtab/{folder}/train_linear_probe.sh@{commit}')
    if dataset in VPT_LINEAR:
        lr, wd = VPT_LINEAR[dataset]
        return dict(lr=lr, weight_decay=wd, optimizer='SGD', batch_size=1024, epochs=100, warmup=10,
                    source=f'{VPT} configs/linear/{VPT_NAME[dataset]}.yaml + configs/base-linear.yaml@7f3942e')
    return dict(lr=1e-3, weight_decay=5e-2, drop_path=0.0, batch_size=128, epochs=100, warmup=10, label_smoothing=0.1,
                source=f'{SSF} train_scripts/vit/cifar_100/train_linear_probe.sh@265131f', note=SSF_AUG_NOTE)


def _full(dataset: str) -> dict:
    if dataset in VPETL_FULL_VTAB_SMOOTHING:
        name = VPETL_YAML.get(dataset, dataset)
        return dict(lr=1e-3, weight_decay=1e-4, drop_path=0.1, batch_size=64, epochs=100, warmup=10,
                    label_smoothing=VPETL_FULL_VTAB_SMOOTHING[dataset],
                    source=f'{VPETL} ImageClassification/configs/model_fulltuning/vtab/{name}.yaml@e7bd087 + '
                           'train/train_model_fulltuning.py@055efb3 argparse (lr, wd, drop path)')
    if dataset in VPT_FINETUNE:
        lr, wd = VPT_FINETUNE[dataset]
        return dict(lr=lr, weight_decay=wd, batch_size=384, epochs=100, warmup=5,
                    source=f'{VPT} configs/finetune/{VPT_NAME[dataset]}.yaml + configs/base-finetune.yaml@7f3942e')
    return dict(lr=5e-5, weight_decay=5e-2, drop_path=0.0, batch_size=128, epochs=100, warmup=10, label_smoothing=0.1,
                source=f'{SSF} train_scripts/vit/cifar_100/train_full.sh@28a70a6', note=SSF_AUG_NOTE)


def _bitfit(dataset: str) -> dict:
    if dataset in VPETL_BITFIT_VTAB:
        lr, wd, dp = VPETL_BITFIT_VTAB[dataset]
        return dict(lr=lr, weight_decay=wd, drop_path=dp, batch_size=32, epochs=100, warmup=10, label_smoothing=0.0,
                    source=f'{VPETL} ImageClassification/train_scripts/vit/vtab/main_script/bitfit.sh@2f244c6')
    return _default(dataset)


def _default(dataset: str) -> dict:
    return dict(VPETL_DEFAULT)


def _noah(key: str) -> dict:
    entry = NOAH_VTAB[key]
    recipe = dict(lr=entry['lr'], weight_decay=1e-4, batch_size=64, epochs=100, label_smoothing=0.0,
                  source=f'{NOAH} {entry["script"]}@ded6834')
    if 'note' in entry:
        recipe['note'] = entry['note']
    return recipe


def _lora(dataset: str) -> dict:
    if dataset in VTAB_TASKS:
        return _noah('lora')
    if dataset in VPETL_FGVC_YAML:
        return dict(lr=1e-3, weight_decay=1e-4, drop_path=0.1, batch_size=128, epochs=100, warmup=10,
                    label_smoothing=0.0,
                    source=f'{VPETL} ImageClassification/configs/model_lora/fgvc/{VPETL_FGVC_YAML[dataset]}.yaml'
                           '@9eb439d + train/train_model_lora.py@055efb3 argparse (lr, wd, drop path)')
    return _default(dataset)


def _adapter(dataset: str) -> dict:
    return _noah('adapter') if dataset in VTAB_TASKS else _default(dataset)


def _vpt(dataset: str) -> dict:
    if dataset in VTAB_TASKS:
        return _noah('vpt')
    if dataset in VPT_PROMPT:
        lr, wd = VPT_PROMPT[dataset]
        return dict(lr=lr, weight_decay=wd, optimizer='SGD', batch_size=128, epochs=100, warmup=10,
                    source=f'{VPT} configs/prompt/{VPT_NAME[dataset]}.yaml + configs/base-prompt.yaml@7f3942e')
    return _default(dataset)


RECIPE_FNS = {'linear': _linear, 'full': _full, 'bitfit': _bitfit, 'lora': _lora, 'adapter': _adapter,
              'houlsby': _default, 'adaptformer': _default, 'vpt_shallow': _vpt, 'vpt_deep': _vpt,
              'prefix': _default, 'ssf': _ssf, 'utuning': _default, 'bypass': _default}
RECIPES: dict[str, dict[str, dict]] = {m: {d: RECIPE_FNS[m](d) for d in DATASETS} for m in METHODS}

def config_path(method: str, dataset: str) -> Path:
    """Relative to ``configs/``: ``<method>/<method>_vit-b16-in21k_<data>.py``, VTAB in ``<method>/vtab/``."""
    if dataset in VTAB_TASKS:
        return Path(method, 'vtab', f'{method}_vit-b16-in21k_vtab-{dataset}.py')
    return Path(method, f'{method}_vit-b16-in21k_{dataset}.py')


def render(method: str, dataset: str) -> str:
    r = RECIPES[method][dataset]
    vtab = dataset in VTAB_TASKS
    up = '../../_base_' if vtab else '../_base_'
    data_base = 'vtab1k' if vtab else dataset
    what = f'VTAB-1k {dataset}' if vtab else dataset
    final = ' (the reported number: retrain on split trainval, see docs/configs.md)' if vtab else ''
    lines = ['# Generated by tools/misc/make_method_configs.py: edit RECIPES there and re-run, not this file.']
    for text in (f'{method} on {what}, ViT-B/16 ImageNet-21k; checkpoint selected on the val split{final}.',
                 f'Recipe source: {r["source"]}', *([f'Note: {r["note"]}'] if 'note' in r else [])):
        lines += textwrap.wrap(text, width=116, initial_indent='# ', subsequent_indent='#   ')
    lines.append(f"_base_ = ['{up}/models/vit-b16-in21k.py', '{up}/datasets/{data_base}.py',")
    lines.append(f"          '{up}/schedules/adamw_cosine_100e.py', '{up}/default_runtime.py']")
    backbone = f'num_classes={NUM_CLASSES[dataset]}'
    if 'drop_path' in r:
        backbone += f', drop_path_rate={r["drop_path"]!r}'
    model = f"model = dict(plan='{method}', backbone=dict({backbone})"
    if 'label_smoothing' in r:
        model += f', label_smoothing={r["label_smoothing"]!r}'
    lines.append(model + ')')
    if r.get('optimizer', 'AdamW') == 'SGD':
        lines.append(f"optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr={r['lr']!r}, momentum=0.9, "
                     f"weight_decay={r['weight_decay']!r}))")
    else:
        lines.append(f"optim_wrapper = dict(optimizer=dict(lr={r['lr']!r}, weight_decay={r['weight_decay']!r}))")
    epochs, warmup = r.get('epochs', 100), r.get('warmup', 10)
    lines += ['# the cosine runs from the warm-up to train_cfg.max_epochs: that one key sets the length',
              'param_scheduler = [',
              f"    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end={warmup}, "
              'convert_to_iter_based=True),',
              f"    dict(type='CosineAnnealingLR', eta_min=1e-8, by_epoch=True, begin={warmup}, "
              'convert_to_iter_based=True),',
              ']',
              f'train_cfg = dict(max_epochs={epochs})']
    train_loader = []
    if 'batch_size' in r:
        train_loader.append(f'batch_size={r["batch_size"]}')
    if vtab:
        train_loader.append(f"dataset=dict(task='{dataset}')")
        lines += [f'train_dataloader = dict({", ".join(train_loader)})',
                  f"val_dataloader = dict(dataset=dict(task='{dataset}'))",
                  f"test_dataloader = dict(dataset=dict(task='{dataset}'))"]
    elif train_loader:
        lines.append(f'train_dataloader = dict({", ".join(train_loader)})')
    lines.append(f"suite = dict(method='{method}', dataset='{dataset}')")
    return '\n'.join(lines) + '\n'


def write_configs(root: Path) -> list[Path]:
    """Write every config under ``root`` (a ``configs/`` folder); return the written paths."""
    paths = []
    for method in METHODS:
        for dataset in DATASETS:
            path = root / config_path(method, dataset)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(method, dataset))
            paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', type=Path, default=CONFIG_ROOT, help='the configs/ folder to write into')
    args = parser.parse_args()
    paths = write_configs(args.out_dir)
    print(f'wrote {len(paths)} configs under {args.out_dir}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
