"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]] [--amp]``.

Distributed: ``torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch`` (see tools/dist_train.sh and
docs/distributed.md). A config with ``strategy=dict(type='FSDPStrategy')`` (or ``--fsdp``) trains with mmengine's
FlexibleRunner; gradient accumulation is ``--cfg-options optim_wrapper.accumulative_counts=K``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from petl_vision import setup_env
from petl_vision.engine import build_runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a petl_vision model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from PATH, or from the latest checkpoint of the work dir when given alone')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (AmpOptimWrapper)')
    parser.add_argument('--fsdp', action='store_true',
                        help="shard the model with FSDP (FlexibleRunner, strategy=dict(type='FSDPStrategy'))")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or \
        osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.fsdp:
        cfg.setdefault('strategy', dict(type='FSDPStrategy'))
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main() -> None:
    args = parse_args()
    setup_env.register_all_modules()
    runner = build_runner(build_config(args))  # Runner, or FlexibleRunner when the config has a strategy
    runner.train()


if __name__ == '__main__':
    main()
