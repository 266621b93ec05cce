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
RATIO_METRICS = {'step_time_s': 'step_time_s', 'peak_memory_mb': 'peak_memory_mb',
                 'infer_unmerged_s': 'infer_unmerged_s', 'infer_merged_s': 'infer_merged_s',
                 'trainable_params': 'trainable_params', 'gflops': 'gflops'}
FULL_REFERENCE = {**RATIO_METRICS, 'infer_merged_s': 'infer_unmerged_s'}


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def add_ratios(methods: dict[str, dict], full: str, peft: str | None) -> None:
    """Give every method ``ratios = {'vs_full': {...}, 'vs_peft': {...}}`` (``vs_peft`` empty without PEFT)."""
    for row in methods.values():
        row['ratios'] = {
            'vs_full': {m: ratio(row[m], methods[full][ref]) for m, ref in FULL_REFERENCE.items()},
            'vs_peft': {m: ratio(row[m], methods[peft][ref]) for m, ref in RATIO_METRICS.items()} if peft else {},
        }


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


COLUMNS = ['method', 'trainable', 'GFLOPs', 'step ms', 'step ×full', 'step ×PEFT', 'peak MB', 'mem ×full',
           'mem ×PEFT', 'infer ms', 'merged ms', 'merged ×backbone']


def markdown_table(report: dict) -> str:
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|---|' + '---:|' * (len(COLUMNS) - 1)]
    for name, r in report['methods'].items():
        full, peft = r['ratios']['vs_full'], r['ratios']['vs_peft']
        ms = [None if r[k] is None else 1e3 * r[k] for k in ('step_time_s', 'infer_unmerged_s', 'infer_merged_s')]
        cells = [name, f'{r["trainable_params"]:,}', _num(r['gflops'], '.2f'), _num(ms[0], '.0f'),
                 _num(full['step_time_s'], '.2f'), _num(peft.get('step_time_s'), '.2f'),
                 _num(r['peak_memory_mb'], '.0f'), _num(full['peak_memory_mb'], '.2f'),
                 _num(peft.get('peak_memory_mb'), '.2f'), _num(ms[1], '.1f'), _num(ms[2], '.1f'),
                 _num(full['infer_merged_s'], '.3f')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def markdown_report(report: dict) -> str:
    c, m = report['config'], report['machine']
    head = (f'{c["model"]}, batch {c["batch_size"]}, {c["img_size"]} px, {c["dtype"]}, {c["device"]} '
            f'({m.get("gpu") or m["cpu"]}, {m["cpu_cores"]} cores, torch {m["torch"]}); median of {c["rounds"]} '
            f'interleaved rounds after {c["warmup"]} warm-up. Peak memory: {report["memory_method"]}. '
            'GFLOPs: forward per image, attention matmuls included.')
    return head + '\n\n' + markdown_table(report) + '\n'


def write_json(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + '\n')
    return path


def plot_ratios(report: dict, path: str | Path) -> Path:
    """Bars of step time and peak memory relative to full fine-tuning, one pair per method."""
    names = list(report['methods'])
    series = {'step time ×full': 'step_time_s', 'peak memory ×full': 'peak_memory_mb'}
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 4))
    width = 0.8 / len(series)
    for i, (label, metric) in enumerate(series.items()):
        values = [report['methods'][n]['ratios']['vs_full'][metric] or 0.0 for n in names]
        ax.bar([j + (i - 0.5) * width for j in range(len(names))], values, width, label=label)
    ax.axhline(1.0, color='grey', lw=0.8, ls='--')
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel('ratio to full fine-tuning')
    ax.set_title(f'{report["config"]["model"]}, batch {report["config"]["batch_size"]}, {report["config"]["device"]}')
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
