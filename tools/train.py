"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH] | --overwrite]``.

A work dir that holds an earlier run (checkpoints, tuner files: petl_vision/engine/work_dir.py) is never replaced
silently: training into it needs ``--resume`` (continue the run), ``--overwrite`` (delete it first) or another
``--work-dir``. The loop is ``train_cfg.type`` (``--cfg-options train_cfg.type=EpochBasedTrainLoop``; see
docs/configs.md), the length ``train_cfg.max_epochs`` (the schedulers follow).

Distributed: ``torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch`` (see tools/dist_train.sh and
docs/distributed.md). A config with ``strategy=dict(type='FSDPStrategy')`` (or ``--fsdp``) trains with mmengine's
FlexibleRunner; gradient accumulation is ``--cfg-options optim_wrapper.accumulative_counts=K``.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

from petl_vision import setup_env
from petl_vision.datasets.config_keys import merge_options
from petl_vision.engine import build_runner
from petl_vision.engine.work_dir import WorkDirInUse, remove_run, resolve_start
from petl_vision.models.config_check import check_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a petl_vision model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    start = parser.add_mutually_exclusive_group()
    start.add_argument('--resume', nargs='?', const='auto', default=None,
                       help='resume from PATH, or from the latest checkpoint of the work dir when given alone')
    start.add_argument('--overwrite', action='store_true',
                       help='delete the earlier run (checkpoints, tuner files) the work dir holds, then train')
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
    merge_options(cfg, args.cfg_options)  # data_root=DIR img_size=S num_classes=C reach every loader
    check_config(cfg)  # "did you mean" for model and loop keys
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


def prepare_work_dir(cfg: Config, overwrite: bool) -> None:
    """Decide how the run starts (resume which checkpoint, or a new run) without losing an earlier run; say so.
    Raises :class:`WorkDirInUse` when a new run would replace one (not with ``overwrite``)."""
    cfg.resume, cfg.load_from, stale, message = resolve_start(cfg.work_dir, bool(cfg.get('resume')),
                                                              cfg.get('load_from'), overwrite)
    main_process = os.environ.get('RANK', '0') == '0'
    if message and main_process:
        print(f'train.py: {message}', file=sys.stderr)
    if stale and main_process:
        remove_run(stale)


def main() -> None:
    args = parse_args()
    setup_env.set_torch_threads()  # PETL_VISION_THREADS / OMP_NUM_THREADS, else half the CPUs (at most 8)
    setup_env.register_all_modules()
    cfg = build_config(args)
    try:
        prepare_work_dir(cfg, args.overwrite)
    except WorkDirInUse as err:
        raise SystemExit(f'train.py: {err}') from None
    runner = build_runner(cfg)  # Runner, or FlexibleRunner when the config has a strategy
    runner.train()


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
