"""Step time, peak memory, inference latency, parameters and FLOPs of PETL presets vs full fine-tuning and PEFT.

    python tools/benchmark.py --model vit_small_patch16_224 --batch-size 8 \
        --presets lora adapter vpt_deep bypass --json out.json     # also writes out.md and out.png

Every method is built on the same (randomly initialised) timm model in one process and timed in interleaved
rounds (median); peak memory comes from a fresh process per method. Figures are also given as ratios to full
fine-tuning and to HF PEFT's LoRA (r=8 on qkv) from the same run. ``--model point_mae_vit_s`` benchmarks the
point-cloud transformer (2,048 points; ``--presets dapt`` adds DAPT's plan). ``--fewshot prolad tsa frozen`` also
times one few-shot episode's adaptation per method (``--fewshot-only``: just that):

    python tools/benchmark.py --model vit_small_patch16_224 --fewshot frozen tsa prolad --fewshot-only --json fs.json

``--mixed-tasks 1 4 16`` times instead a batch spread over N named adapters against the same batch through one
adapter, training step and inference, for ``--presets`` (default lora adapter vpt_deep), and HF PEFT's
``adapter_names`` mixed-batch inference for LoRA:

    python tools/benchmark.py --model vit_base_patch16_224 --mixed-tasks 1 4 16 --threads 1 --json mixed.json

``--merged`` times ``combine_adapters`` over ``--merged-adapters`` (20) LoRA r8 adapters (``--merged-method`` ties) and
the merged combination's inference against one unmerged adapter and the frozen backbone; ``--routed 5 10 20`` the
training step and inference of L2R composition over N LoRA adapters against one adapter; ``--pha`` PHA's training
step (retriever features from a frozen pre-pass and from block ``--pha-block``) against per-task adapters:

    python tools/benchmark.py --model vit_base_patch16_224 --merged --threads 1 --json merged.json
    python tools/benchmark.py --model vit_base_patch16_224 --routed 5 10 20 --threads 1 --json routed.json
    python tools/benchmark.py --model vit_base_patch16_224 --pha --threads 1 --json pha.json
"""
import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from petl_vision.benchmark import (BenchConfig, fewshot_table, markdown_report, plot_ratios,  # noqa: E402
                                   run_benchmark, time_fewshot, write_json)
from petl_vision.benchmark.merged import MERGE_METHODS, MergedConfig, merged_plot, merged_table, run_merged  # noqa: E402
from petl_vision.benchmark.mixed import MixedConfig, mixed_table, run_mixed  # noqa: E402
from petl_vision.benchmark.pha import PHABenchConfig, pha_plot, pha_table, run_pha  # noqa: E402
from petl_vision.benchmark.routed import RoutedConfig, routed_plot, routed_table, run_routed  # noqa: E402
from petl_vision.benchmark.timing import DTYPE_ALIASES  # noqa: E402
from petl_vision.composition.merging import PRUNED  # noqa: E402
from petl_vision.runtime_threads import set_torch_threads  # noqa: E402


def parse_args() -> argparse.Namespace:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=d.model, help='timm model name, e.g. vit_base_patch16_224')
    p.add_argument('--presets', nargs='+', default=d.presets, help='petl_vision presets (full is always added)')
    p.add_argument('--batch-size', type=int, default=d.batch_size)
    p.add_argument('--img-size', type=int, default=d.img_size)
    p.add_argument('--num-classes', type=int, default=d.num_classes)
    p.add_argument('--dtype', choices=['float32', 'bfloat16', 'float16', 'fp32', 'bf16', 'fp16'], default=d.dtype,
                   help='autocast dtype (weights and optimizer stay float32; fp16 adds a GradScaler)')
    p.add_argument('--device', choices=['cpu', 'cuda'], default=d.device)
    p.add_argument('--rounds', type=int, default=d.rounds, help='timed interleaved rounds (median reported)')
    p.add_argument('--warmup', type=int, default=d.warmup, help='untimed rounds first')
    p.add_argument('--threads', type=int, help='torch CPU threads (1 gives steadier timings on a busy machine; '
                   'default: PETL_VISION_THREADS, OMP_NUM_THREADS, else half the CPUs this process may use, at most 8)')
    p.add_argument('--grad-checkpointing', action='store_true',
                   help="timm's gradient checkpointing of the frozen blocks (left off where a tuner wraps the stack)")
    p.add_argument('--no-peft', action='store_true', help='leave HF PEFT LoRA out even when installed')
    p.add_argument('--fewshot', nargs='+', default=[], metavar='METHOD',
                   help='time per-episode few-shot adaptation of these methods (frozen, head, tsa, prolad, presets)')
    p.add_argument('--fewshot-steps', type=int, default=10, help='adaptation steps per stage (fixed, no early stop)')
    p.add_argument('--fewshot-shots', type=int, default=5, help='K of the N-way K-shot episode (N = 5, 15 queries)')
    p.add_argument('--fewshot-only', action='store_true', help='skip the training/inference benchmark')
    p.add_argument('--mixed-tasks', nargs='+', type=int, metavar='N',
                   help='time mixed-task batches over N adapters (e.g. 1 4 16) instead of the preset benchmark')
    p.add_argument('--merged', action='store_true',
                   help='time a merged weight-space combination of LoRA adapters against one adapter and the frozen '
                   'backbone (and the combine itself) instead of the preset benchmark')
    p.add_argument('--merged-adapters', type=int, default=MergedConfig.adapters, metavar='N',
                   help='LoRA r8 adapters (whole qkv) combined by --merged')
    p.add_argument('--merged-method', default=MergedConfig.method, choices=MERGE_METHODS,
                   help='combine_adapters method of --merged (ties, dare_ties, magnitude_prune: density 0.2; linear)')
    p.add_argument('--routed', nargs='+', type=int, metavar='N',
                   help='time L2R composition over N LoRA adapters (e.g. 5 10 20) against one adapter, training step '
                   'and inference, instead of the preset benchmark')
    p.add_argument('--pha', action='store_true',
                   help="time PHA's multi-task training step (retriever on a frozen pre-pass and on an early block) "
                   'against per-task adapters of the same shape, instead of the preset benchmark')
    p.add_argument('--pha-tasks', type=int, default=PHABenchConfig.tasks, help='tasks of the mixed batch of --pha')
    p.add_argument('--pha-block', type=int, default=PHABenchConfig.block,
                   help="block whose output tokens feed PHA's retriever in the same-pass variant of --pha")
    p.add_argument('--json', type=Path, help='write the full record here')
    p.add_argument('--markdown', type=Path, help='write the tables here (default: next to --json, .md)')
    p.add_argument('--plot', type=Path,
                   help="PNG of the ratios to full fine-tuning or the mode's baseline (default: next to --json, .png)")
    return p.parse_args()


def main() -> None:
    a = parse_args()
    threads = set_torch_threads(a.threads)  # also passed on to the peak-memory child processes
    if a.json:
        a.markdown = a.markdown or a.json.with_suffix('.md')
        a.plot = a.plot or a.json.with_suffix('.png')
    cfg = BenchConfig(model=a.model, presets=a.presets, batch_size=a.batch_size, img_size=a.img_size,
                      num_classes=a.num_classes, dtype=a.dtype, device=a.device, rounds=a.rounds, warmup=a.warmup,
                      peft=not a.no_peft, threads=threads, grad_checkpointing=a.grad_checkpointing)
    if a.fewshot_only and not a.fewshot:
        raise SystemExit('--fewshot-only needs --fewshot METHOD ...')
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    modes = [f for f, on in (('--mixed-tasks', a.mixed_tasks), ('--merged', a.merged), ('--routed', a.routed),
                             ('--pha', a.pha)) if on]
    if len(modes) > 1:
        raise SystemExit(f'{" and ".join(modes)} are separate benchmarks; run one per command')
    if a.mixed_tasks:
        return mixed_main(a, log)
    if a.merged:
        return merged_main(a, log)
    if a.routed:
        return routed_main(a, log)
    if a.pha:
        return pha_main(a, log)
    report = {} if a.fewshot_only else run_benchmark(cfg, log=log)
    text = '' if a.fewshot_only else markdown_report(report)
    if a.fewshot:
        log(f'few-shot episodes: {", ".join(a.fewshot)}')
        report['fewshot'] = time_fewshot(a.model, a.fewshot, img_size=a.img_size, k_shot=a.fewshot_shots,
                                         steps=a.fewshot_steps, rounds=a.rounds, device=a.device)
        text += ('\n' if text else '') + fewshot_table(report['fewshot']) + '\n'
    print(text)
    if a.markdown:
        a.markdown.parent.mkdir(parents=True, exist_ok=True)
        a.markdown.write_text(text)
    plot = a.plot and 'methods' in report and plot_ratios(report, a.plot)
    for path in (a.json and write_json(report, a.json), a.markdown, plot):
        if path:
            print(f'written: {path}', file=sys.stderr)


def mixed_main(a: argparse.Namespace, log) -> None:
    presets = a.presets if a.presets != BenchConfig().presets else ['lora', 'adapter', 'vpt_deep']
    cfg = MixedConfig(model=a.model, methods=tuple(presets), adapters=tuple(a.mixed_tasks), batch_size=a.batch_size,
                      img_size=a.img_size, num_classes=a.num_classes, dtype=a.dtype, device=a.device, rounds=a.rounds,
                      warmup=a.warmup, peft=not a.no_peft)
    report = run_mixed(cfg, log=log)
    text = mixed_table(report)
    print(text)
    if a.json:
        write_json(report, a.json)
        (a.markdown or a.json.with_suffix('.md')).write_text(text + '\n')
        print(f'written: {a.json}', file=sys.stderr)


def write_outputs(a: argparse.Namespace, report: dict, text: str, plot: Callable[[dict, Path], Path]) -> None:
    """Print the tables; with --json also write the record, the markdown (.md) and the plot (.png) next to it."""
    print(text)
    if not a.json:
        return
    a.markdown.write_text(text + '\n')
    for path in (write_json(report, a.json), a.markdown, plot(report, a.plot)):
        print(f'written: {path}', file=sys.stderr)


def _common(a: argparse.Namespace) -> dict:
    """The options every mode shares (its config's field names)."""
    return dict(model=a.model, batch_size=a.batch_size, img_size=a.img_size, num_classes=a.num_classes,
                dtype=DTYPE_ALIASES.get(a.dtype, a.dtype), device=a.device, rounds=a.rounds, warmup=a.warmup)


def merged_main(a: argparse.Namespace, log) -> None:
    density = 0.2 if a.merged_method in PRUNED else None  # TIES' top 20%
    cfg = MergedConfig(adapters=a.merged_adapters, method=a.merged_method, density=density, **_common(a))
    report = run_merged(cfg, log=log)
    write_outputs(a, report, merged_table(report), merged_plot)


def routed_main(a: argparse.Namespace, log) -> None:
    report = run_routed(RoutedConfig(adapters=tuple(a.routed), **_common(a)), log=log)
    write_outputs(a, report, routed_table(report), routed_plot)


def pha_main(a: argparse.Namespace, log) -> None:
    report = run_pha(PHABenchConfig(tasks=a.pha_tasks, block=a.pha_block, **_common(a)), log=log)
    write_outputs(a, report, pha_table(report), pha_plot)


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
