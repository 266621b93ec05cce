"""Evaluate a checkpoint: ``python tools/test.py CONFIG CKPT``.

CKPT is a Runner checkpoint (``.pth``) or a tuner-only file (``.safetensors``, from TunerCheckpointHook,
``tools/publish.py`` or ``petl_vision.save_tuners``) that is loaded onto the config's backbone.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper

from petl_vision import setup_env
from petl_vision.datasets.config_keys import merge_options
from petl_vision.engine import build_runner
from petl_vision.models.config_check import check_config
from petl_vision.tuners import load_tuners, tuned_network


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a petl_vision model')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='Runner checkpoint (.pth) or tuner-only file (.safetensors)')
    parser.add_argument('--work-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    setup_env.set_torch_threads()  # PETL_VISION_THREADS / OMP_NUM_THREADS, else half the CPUs (at most 8)
    setup_env.register_all_modules()
    cfg = Config.fromfile(args.config)
    merge_options(cfg, args.cfg_options)  # data_root=DIR img_size=S num_classes=C reach every loader
    check_config(cfg)  # "did you mean" for model and loop keys
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or \
        osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    tuner_only = args.checkpoint.endswith('.safetensors')
    cfg.load_from = None if tuner_only else args.checkpoint
    runner = build_runner(cfg)  # Runner, or FlexibleRunner when the config has a strategy
    if tuner_only:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        load_tuners(tuned_network(model), args.checkpoint, owner=model)  # refuses a file for another backbone or plan
    runner.test()


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
