"""Trainable-parameter table of every preset on a timm model, or of the model a config builds.

    python tools/analysis/param_table.py --model vit_base_patch16_224 [--num-classes 100] [--json]
    python tools/analysis/param_table.py --config configs/lora/lora_vit-b16-in21k_cifar100.py --json

Models are built on the ``meta`` device (shapes only), so ViT-L or Swin-B cost no memory or time.
Every row has ``trainable`` (backbone tuners, without the head), ``head`` and ``total``.
"""
import argparse
import json
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import petl_vision as pv
from petl_vision.models.classifier import classifier_parameter_counts


def preset_rows(model_name: str, presets: list[str], num_classes: int) -> list[dict]:
    rows = []
    for preset in presets:
        with torch.device('meta'):
            model = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
        counts = classifier_parameter_counts(pv.apply_tuners(model, preset))
        rows.append({'model': model_name, 'preset': preset,
                     **{k: counts[k] for k in ('trainable', 'head', 'total')}})
    return rows


def config_rows(configs: list[str]) -> list[dict]:
    from mmengine.config import Config

    from petl_vision.registry import MODELS
    from petl_vision.setup_env import register_all_modules

    register_all_modules()
    rows = []
    for config in configs:
        cfg = Config.fromfile(config)
        cfg.model.backbone.pretrained = None
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        rows.append({'config': Path(config).stem, **model.parameter_counts()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--model', help='timm model name, e.g. vit_base_patch16_224, swin_tiny_patch4_window7_224')
    src.add_argument('--config', nargs='+', help='mmengine configs; reports the models they build (the `head` '
                     'column: classifier head, or the task decoders of a dense model)')
    parser.add_argument('--presets', nargs='+', default=None, help='default: all presets')
    parser.add_argument('--num-classes', type=int, default=100, help='head size reported in the `head` column')
    parser.add_argument('--json', action='store_true', help='print JSON rows instead of a table')
    args = parser.parse_args()
    rows = config_rows(args.config) if args.config else \
        preset_rows(args.model, args.presets or pv.list_presets(), args.num_classes)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    name_key = 'preset' if args.model else 'config'
    width = max(14, *(len(r[name_key]) for r in rows))
    columns = [k for k in ('trainable', 'head', 'trainable_with_head', 'total') if k in rows[0]]
    print(f'{name_key:<{width}} ' + ' '.join(f'{c.replace("_", " "):>19}' for c in columns))
    for r in rows:
        print(f'{r[name_key]:<{width}} ' + ' '.join(f'{r[c]:>19,}' for c in columns))


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
