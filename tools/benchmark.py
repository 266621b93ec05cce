"""Step time, peak memory, inference latency, parameters and FLOPs of PETL presets vs full fine-tuning and PEFT.

    python tools/benchmark.py --model vit_small_patch16_224 --batch-size 8 \
        --presets lora adapter vpt_deep bypass --json out.json --markdown out.md --plot out.png

Every method is built on the same (randomly initialised) timm model in one process and timed in interleaved
rounds (median); peak memory comes from a fresh process per method. Figures are also given as ratios to full
fine-tuning and to HF PEFT's LoRA (r=8 on qkv) from the same run.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from petl_vision.benchmark import BenchConfig, markdown_report, plot_ratios, run_benchmark, write_json  # noqa: E402


def parse_args() -> argparse.Namespace:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=d.model, help='timm model name, e.g. vit_base_patch16_224')
    p.add_argument('--presets', nargs='+', default=d.presets, help='petl_vision presets (full is always added)')
    p.add_argument('--batch-size', type=int, default=d.batch_size)
    p.add_argument('--img-size', type=int, default=d.img_size)
    p.add_argument('--num-classes', type=int, default=d.num_classes)
    p.add_argument('--dtype', choices=['float32', 'bfloat16', 'float16'], default=d.dtype,
                   help='autocast dtype (weights and optimizer stay float32)')
    p.add_argument('--device', choices=['cpu', 'cuda'], default=d.device)
    p.add_argument('--rounds', type=int, default=d.rounds, help='timed interleaved rounds (median reported)')
    p.add_argument('--warmup', type=int, default=d.warmup, help='untimed rounds first')
    p.add_argument('--threads', type=int, help='torch CPU threads (1 gives steadier timings on a busy machine)')
    p.add_argument('--no-peft', action='store_true', help='leave HF PEFT LoRA out even when installed')
    p.add_argument('--json', type=Path, help='write the full record here')
    p.add_argument('--markdown', type=Path, help='write the table here (it is printed either way)')
    p.add_argument('--plot', type=Path, help='write a PNG of step-time and memory ratios to full fine-tuning')
    return p.parse_args()


def main() -> None:
    a = parse_args()
    cfg = BenchConfig(model=a.model, presets=a.presets, batch_size=a.batch_size, img_size=a.img_size,
                      num_classes=a.num_classes, dtype=a.dtype, device=a.device, rounds=a.rounds, warmup=a.warmup,
                      peft=not a.no_peft, threads=a.threads)
    report = run_benchmark(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    text = markdown_report(report)
    print(text)
    if a.markdown:
        a.markdown.parent.mkdir(parents=True, exist_ok=True)
        a.markdown.write_text(text)
    for path in (a.json and write_json(report, a.json), a.plot and plot_ratios(report, a.plot)):
        if path:
            print(f'written: {path}')


if __name__ == '__main__':
    main()
