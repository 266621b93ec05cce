"""Ratios, the JSON record, the markdown table and the ratio bar chart of a benchmark run."""
import json
import os
import platform
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

# metric -> the baseline's metric it is divided by (a merged model is compared with the frozen backbone,
# which is what the `full` method runs at inference)
RATIO_METRICS = {'step_time_s': 'step_time_s', 'step_cpu_s': 'step_cpu_s', 'peak_memory_mb': 'peak_memory_mb',
                 'infer_unmerged_s': 'infer_unmerged_s', 'infer_merged_s': 'infer_merged_s',
                 'infer_unmerged_cpu_s': 'infer_unmerged_cpu_s', 'infer_merged_cpu_s': 'infer_merged_cpu_s',
                 'trainable_params': 'trainable_params', 'gflops': 'gflops',
                 'saved_for_backward_mb': 'saved_for_backward_mb', 'gflops_merged': 'gflops_merged'}
FULL_REFERENCE = {**RATIO_METRICS, 'infer_merged_s': 'infer_unmerged_s', 'infer_merged_cpu_s': 'infer_unmerged_cpu_s',
                  'gflops_merged': 'gflops'}


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def add_ratios(methods: dict[str, dict], full: str, peft: str | None) -> None:
    """Give every method ``ratios = {'vs_full': {...}, 'vs_peft': {...}}`` (``vs_peft`` empty without PEFT)."""
    def vs(row: dict, base: dict, refs: dict[str, str]) -> dict[str, float | None]:
        return {m: ratio(row.get(m), base.get(ref)) for m, ref in refs.items()}

    for row in methods.values():
        row['ratios'] = {'vs_full': vs(row, methods[full], FULL_REFERENCE),
                         'vs_peft': vs(row, methods[peft], RATIO_METRICS) if peft else {}}


def _cpu_model() -> str:
    cpuinfo = Path('/proc/cpuinfo')
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor() or 'unknown'


def machine_info(device: torch.device) -> dict:
    import timm

    info = {'cpu': _cpu_model(), 'cpu_cores': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
            'torch': torch.__version__, 'timm': timm.__version__, 'python': platform.python_version(),
            'platform': platform.platform(), 'device': str(device)}
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    try:
        import peft
        info['peft'] = peft.__version__
    except ImportError:
        info['peft'] = None
    return info


def _num(value: float | None, fmt: str) -> str:
    return 'n/a' if value is None else format(value, fmt)


COLUMNS = ['method', 'trainable', 'GFLOPs', 'step ms', 'step ×full', 'step ×PEFT', 'step CPU ms', 'CPU ×full',
           'CPU ×PEFT', 'peak MB', 'mem ×full', 'mem ×PEFT', 'saved MB', 'infer ms', 'merged ms', 'merged ×backbone']


def markdown_table(report: dict) -> str:
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|---|' + '---:|' * (len(COLUMNS) - 1)]
    for name, r in report['methods'].items():
        full, peft = r['ratios']['vs_full'], r['ratios']['vs_peft']
        ms = {k: None if r.get(k) is None else 1e3 * r[k]
              for k in ('step_time_s', 'step_cpu_s', 'infer_unmerged_s', 'infer_merged_s')}
        cells = [name, f'{r["trainable_params"]:,}', _num(r['gflops'], '.2f'),
                 _num(ms['step_time_s'], '.0f'), _num(full['step_time_s'], '.2f'), _num(peft.get('step_time_s'), '.2f'),
                 _num(ms['step_cpu_s'], '.0f'), _num(full['step_cpu_s'], '.2f'), _num(peft.get('step_cpu_s'), '.2f'),
                 _num(r['peak_memory_mb'], '.0f'), _num(full['peak_memory_mb'], '.2f'),
                 _num(peft.get('peak_memory_mb'), '.2f'), _num(r.get('saved_for_backward_mb'), '.1f'),
                 _num(ms['infer_unmerged_s'], '.1f'), _num(ms['infer_merged_s'], '.1f'),
                 _num(full['infer_merged_s'], '.3f')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


RATIO_COLUMNS = {'step': 'step_time_s', 'step CPU': 'step_cpu_s', 'memory': 'peak_memory_mb',
                 'saved': 'saved_for_backward_mb', 'infer': 'infer_unmerged_s', 'merged infer': 'infer_merged_s',
                 'merged infer CPU': 'infer_merged_cpu_s', 'trainable': 'trainable_params', 'GFLOPs': 'gflops',
                 'merged GFLOPs': 'gflops_merged'}


def ratio_table(report: dict) -> str:
    """Every figure as ×full and ×PEFT (merged inference: ×the full model's, i.e. the bare backbone's, latency)."""
    peft = bool(report['baselines'].get('peft'))
    refs = ['full', 'PEFT'] if peft else ['full']
    head = [f'{c} ×{ref}' for c in RATIO_COLUMNS for ref in refs]
    lines = ['| method | ' + ' | '.join(head) + ' |', '|---|' + '---:|' * len(head)]
    for name, r in report['methods'].items():
        cells = [_num(r['ratios'][f'vs_{ref.lower()}'].get(metric), '.3f')
                 for metric in RATIO_COLUMNS.values() for ref in refs]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _checkpointing_note(report: dict) -> str:
    if not report['config'].get('grad_checkpointing'):
        return 'Gradient checkpointing: off.'
    states = {n: r.get('grad_checkpointing', 'off') for n, r in report['methods'].items()}
    on = [n for n, s in states.items() if s == 'on']
    off = [f'{n} ({s})' for n, s in states.items() if s != 'on']
    return f'Gradient checkpointing (timm, training steps only): on for {", ".join(on) or "none"}' + \
        (f'; off for {"; ".join(off)}.' if off else '.')


def markdown_report(report: dict) -> str:
    c, m = report['config'], report['machine']
    load = m.get('load_average_before'), m.get('load_average_after')
    load_text = f' Load average (1/5/15 min) before {load[0]}, after {load[1]}.' if all(load) else ''
    from .methods import NUM_POINTS, is_point_model

    size = f'{NUM_POINTS} points' if is_point_model(c['model']) else f'{c["img_size"]} px'
    head = (f'{c["model"]}, batch {c["batch_size"]}, {size}, {c["dtype"]}, {c["device"]} '
            f'({m.get("gpu") or m["cpu"]}, {m["cpu_cores"]} cores, {m["torch_threads"]} torch threads, '
            f'torch {m["torch"]}); median of {c["rounds"]} interleaved rounds after {c["warmup"]} warm-up '
            f'(step: wall clock; step CPU: process CPU time, steadier on a shared machine).{load_text} '
            f'Peak memory: {report["memory_method"]}. Saved MB: tensors autograd keeps for backward (one forward, '
            'parameters excluded; deterministic). GFLOPs: forward per image, attention matmuls included. '
            + _checkpointing_note(report))
    return head + '\n\n' + markdown_table(report) + '\n\nRatios:\n\n' + ratio_table(report) + '\n'


def write_json(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + '\n')
    return path


def plot_ratios(report: dict, path: str | Path) -> Path:
    """Bars of step time, peak memory and (unmerged) inference latency relative to full fine-tuning.

    On CPU the step bar is process CPU time (steadier when other jobs share the cores), on CUDA wall clock.
    """
    names = list(report['methods'])
    step = ('train step (CPU time) ×full', 'step_cpu_s') if report['config']['device'] == 'cpu' else \
        ('train step ×full', 'step_time_s')
    series = dict([step, ('peak memory ×full', 'peak_memory_mb'), ('inference ×full', 'infer_unmerged_s')])
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 4))
    width = 0.8 / len(series)
    top = 1.0
    for i, (label, metric) in enumerate(series.items()):
        values = [report['methods'][n]['ratios']['vs_full'][metric] or 0.0 for n in names]
        top = max(top, *values)
        ax.bar([j + (i - (len(series) - 1) / 2) * width for j in range(len(names))], values, width, label=label)
    ax.set_ylim(0, 1.3 * top)  # room for the legend above the bars
    ax.axhline(1.0, color='grey', lw=0.8, ls='--')
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel('ratio to full fine-tuning')
    c = report['config']
    ax.set_title(f'{c["model"]}, batch {c["batch_size"]}, {c["img_size"]} px, {c["dtype"]}, {c["device"]}')
    ax.legend(loc='upper center', ncol=len(series), fontsize='small')
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (a busy machine makes every timing noisier); None off Unix."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, 'getloadavg') else None


def plot_bars(values: dict[str, dict[str, float]], path: str | Path, title: str, ylabel: str,
              target: float | None = None) -> Path:
    """Grouped bars: ``values[group][series]`` (e.g. ``{'N=10': {'train': 1.1, 'inference': 1.0}}``), a dashed line
    at 1 and, when given, a dotted line at ``target``."""
    groups = list(values)
    series = list(dict.fromkeys(s for v in values.values() for s in v))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(groups) * max(1, len(series) / 2) + 2), 4))
    width = 0.8 / len(series)
    top = max([1.0, target or 0.0, *(x for v in values.values() for x in v.values())])
    for i, s in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, [values[g].get(s, 0.0) for g in groups], width, label=s)
    ax.axhline(1.0, color='grey', lw=0.8, ls='--')
    if target is not None:
        ax.axhline(target, color='red', lw=0.8, ls=':', label=f'target {target:g}x')
    ax.set_ylim(0, 1.3 * top)  # room for the legend above the bars
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc='upper center', ncol=min(4, len(series) + 1), fontsize='small')
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
