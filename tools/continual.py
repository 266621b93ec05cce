"""Run a continual-learning sequence from a config: ``python tools/continual.py CONFIG [--work-dir DIR]``.

    python tools/continual.py configs/continual/lora_vit-digits_digits-rot90-5x2.py      # a few minutes, 1 CPU
    python tools/continual.py CONFIG --stop-after 2          # two stages, state saved; then:
    python tools/continual.py CONFIG --resume                # continues at stage 3

The config (``configs/continual/README.md``) names the sequence (dataset, protocol, tasks, class-order seed), the
per-task adapter and recipe, and the methods. Each stage trains its adapter, the sequential fine-tuning adapter
and the L2R routers, then evaluates every seen stage under every method
(``petl_vision.continual.harness``). After each stage the state (adapters, routers, memory, prototypes, matrices)
is saved in ``WORK_DIR/state``, so a killed run continues at the next stage with ``--resume``. A work dir that
holds a run is never replaced silently: ``--resume`` continues it, ``--overwrite`` deletes it first.

Writes into the work dir: ``sequence.json`` (class order), ``results.json`` (matrices, metrics, routing accuracy,
timings), ``accuracy_<method>.csv``, ``accuracy_matrices.png`` (a heat map per method), ``stage_accuracy.png``
(accuracy on all seen stages after each stage, one line per method) and ``report.md`` (the summary table).
"""
import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from petl_vision import setup_env  # noqa: E402
from petl_vision.continual.config_run import build_run  # noqa: E402
from petl_vision.continual.plots import plot_matrices, plot_stage_curves, stage_curves  # noqa: E402
from petl_vision.continual.state import recover_state  # noqa: E402
from petl_vision.runtime_threads import add_threads_argument  # noqa: E402

METRICS = ('final_average_accuracy', 'average_incremental_accuracy', 'max_forgetting', 'backward_transfer')
OUTPUTS = ('results.json', 'report.md', 'accuracy_matrices.png', 'stage_accuracy.png', 'sequence.json',
           'config.json', 'accuracy_*.csv', 'stages')  # stages/: each stage's Runner logs


class WorkDirInUse(FileExistsError):
    """A new run would replace the continual run a work dir holds."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run a continual-learning sequence (per-task adapters; oracle, '
                                                 'L2R, Arrow, uniform, sequential FT, nearest prototype, SimpleCIL)')
    parser.add_argument('config', help='continual config (configs/continual/)')
    parser.add_argument('--work-dir', type=Path, help='where the state and outputs go (default: '
                                                      'work_dirs/continual/<config name>)')
    start = parser.add_mutually_exclusive_group()
    start.add_argument('--resume', action='store_true', help='continue the run in the work dir at its next stage')
    start.add_argument('--overwrite', action='store_true', help='delete the run the work dir holds, then start')
    parser.add_argument('--stop-after', type=int, metavar='N',
                        help='stop after N stages in total (the state is saved; continue with --resume)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys, key=value')
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.stop_after is not None and args.stop_after < 1:
        parser.error('--stop-after must be >= 1')
    return args


def prepare_work_dir(work_dir: Path, config: dict, resume: bool, overwrite: bool) -> bool:
    """True when the run continues from ``work_dir/state``; refuses to replace a run without --resume/--overwrite,
    and to resume a run of another config."""
    recover_state(work_dir / 'state')  # a save killed while swapping folders left the previous state as state.old
    held = [p for pattern in ('state', *OUTPUTS) for p in work_dir.glob(pattern)]
    if resume and (work_dir / 'state').is_dir():
        saved = json.loads((work_dir / 'config.json').read_text())
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        if changed:
            raise WorkDirInUse(f'{work_dir} holds a run of another config (keys {changed} differ); resume it with '
                               'the same config, or start over with --overwrite')
        return True
    if held and not overwrite:
        options = 'Continue it with --resume, run' if (work_dir / 'state').is_dir() else 'Run'
        raise WorkDirInUse(f'{work_dir} holds an earlier continual run ({", ".join(p.name for p in held[:5])}); '
                           f'starting here would replace it. {options} into another --work-dir, or pass --overwrite '
                           'to delete it and start over')
    for path in held:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return False


def _pct(v) -> str:
    return '' if v is None or np.isnan(v) else f'{100 * v:.1f}'


def report(result: dict) -> str:
    """The summary table (%), the routing accuracy per stage and the per-stage curve."""
    methods = list(result['matrices'])
    lines = ['| method | ' + ' | '.join(METRICS) + ' |', '|---|' + '---|' * len(METRICS)]
    for m in methods:
        got = result['metrics'].get(m, {})
        lines.append(f'| {m} | ' + ' | '.join(_pct(got.get(k)) for k in METRICS) + ' |')
    stages = range(1, result['completed'] + 1)
    header = ' | '.join(f'{s}' for s in stages)
    lines += ['', f'| accuracy on all seen stages (%), after stage | {header} |', '|---|' + '---|' * len(stages)]
    lines += [f'| {m} | ' + ' | '.join(_pct(v) for v in curve) + ' |' for m, curve in stage_curves(result).items()]
    lines += ['', f'| routing accuracy (%), after stage | {header} |', '|---|' + '---|' * len(stages)]
    lines += [f'| {m} | ' + ' | '.join(_pct(v) for v in values) + ' |'
              for m, values in result['routing_accuracy'].items()]
    return '\n'.join(lines) + '\n'


def _no_nan(value):
    """NaN (the accuracy matrices above the diagonal) -> None, so the json is strict."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return None if isinstance(value, float) and np.isnan(value) else value


def write_outputs(result: dict, out: Path) -> None:
    (out / 'results.json').write_text(json.dumps(_no_nan(result), indent=1, allow_nan=False))
    for m, rows in result['matrices'].items():
        with open(out / f'accuracy_{m}.csv', 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['after_stage', *result['stages']])
            for name, row in zip(result['stages'], rows):
                writer.writerow([name, *('' if np.isnan(v) else f'{v:.4f}' for v in row)])
    plot_matrices(result, str(out / 'accuracy_matrices.png'))
    plot_stage_curves(result, str(out / 'stage_accuracy.png'))
    (out / 'report.md').write_text(report(result))


def run(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run (or continue) the sequence, write the outputs; returns the result (NaN above the
    diagonal; ``results.json`` has null there)."""
    args = parse_args(argv)
    threads = setup_env.set_torch_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    work_dir = args.work_dir or Path('work_dirs') / 'continual' / Path(args.config).stem
    config = json.loads(json.dumps(cfg.to_dict(), default=str))
    run_, sequence = build_run(cfg, work_dir=work_dir)  # a bad config fails here, before the work dir is touched
    resumed = prepare_work_dir(work_dir, config, args.resume, args.overwrite)
    work_dir.mkdir(parents=True, exist_ok=True)
    if resumed:
        run_.restore(work_dir / 'state')
        print(f'continual.py: resuming {work_dir} after stage {run_.completed}/{len(run_.stages)}')
    else:
        (work_dir / 'config.json').write_text(json.dumps(config, indent=1))
        sequence.save(work_dir / 'sequence.json')
    result = run_.run(stop_after=args.stop_after, save_to=work_dir / 'state')
    result = {'config': config, 'threads': threads, **result}
    write_outputs(result, work_dir)
    print(report(result))
    print(f'{sum(result["seconds"]):.1f} s of stages on {threads} thread(s); written to {work_dir}')
    return result


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
