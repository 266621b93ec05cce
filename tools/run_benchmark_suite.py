"""Train a set of configs and write one results table (markdown + CSV) and an accuracy-vs-parameters plot.

    python tools/run_benchmark_suite.py configs/quickstart --work-dir work_dirs/quickstart
    python tools/run_benchmark_suite.py configs/lora/lora_vit-b16-in21k_cub.py configs/ssf/... --work-dir DIR

Each run selects its best checkpoint on the validation split (TunerCheckpointHook), then that best tuner
file is evaluated once on the test split when the config has a ``test_dataloader``.
"""
import argparse
import json
import time
from pathlib import Path

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from petl_vision.analysis import SuiteRow, write_results
from petl_vision.setup_env import register_all_modules
from petl_vision.tuners import load_tuners


def expand(paths: list[str]) -> list[Path]:
    configs = []
    for p in map(Path, paths):
        configs.extend(sorted(p.glob('*.py')) if p.is_dir() else [p])
    if not configs:
        raise FileNotFoundError(f'no config files in {paths}')
    return configs


def run_one(config: Path, work_dir: Path, options: dict | None) -> SuiteRow:
    cfg = Config.fromfile(str(config))
    if options:
        cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir / config.stem)
    cfg.experiment_name = config.stem
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    model = runner.model
    best = Path(cfg.work_dir) / 'tuners_best.safetensors'
    val = json.loads(best.with_suffix('.json').read_text())['accuracy/top1'] if best.exists() else None
    test = None
    if cfg.get('test_dataloader'):
        if best.exists():
            load_tuners(model.backbone, best)
        test = runner.test()['accuracy/top1']
    counts = model.parameter_counts()
    meta = cfg.get('suite', {})
    return SuiteRow(config=str(config), dataset=meta.get('dataset', cfg.train_dataloader.dataset.type),
                    method=meta.get('method', config.stem), trainable=counts['trainable'], head=counts['head'],
                    val_top1=val, test_top1=test, train_seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='config files or folders of configs')
    parser.add_argument('--work-dir', default='work_dirs/suite')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every config')
    args = parser.parse_args()
    register_all_modules()
    work_dir = Path(args.work_dir)
    rows = [run_one(c, work_dir, args.cfg_options) for c in expand(args.configs)]
    paths = write_results(rows, work_dir)
    print(paths['markdown'].read_text())
    print(f'written: {", ".join(str(p) for p in paths.values())}')


if __name__ == '__main__':
    main()
