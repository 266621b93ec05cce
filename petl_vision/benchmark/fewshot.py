"""Per-episode adaptation time of few-shot methods (ProLAD and its baselines) on a frozen backbone.

Each method adapts on one synthetic N-way K-shot episode (random images; the time does not depend on the
pixels) with a fixed number of steps per stage (no early stopping, so every episode does the same work) and
classifies Q queries per class; the median over ``rounds`` episodes after one warm-up is reported. Since real
episodes stop early (ProLAD: up to 100 steps per stage), the report also gives the time per adaptation step and
the projection to 100 steps per stage.
"""
import time

import torch

from ..fewshot.methods import build_fewshot_method
from .methods import create_backbone, is_point_model
from .timing import median, synchronize

STAGES = {'frozen': 0, 'prolad': 2}  # adaptation stages per episode; every other method has one


def time_fewshot(model_name: str, methods: list[str], img_size: int = 224, n_way: int = 5, k_shot: int = 5,
                 n_query: int = 15, steps: int = 10, rounds: int = 3, device: str = 'cpu', seed: int = 0) -> dict:
    if is_point_model(model_name):
        raise ValueError('the few-shot timing runs on image backbones')
    dev = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    support_x = torch.randn(n_way * k_shot, 3, img_size, img_size, generator=g).to(dev)
    support_y = torch.arange(n_way).repeat_interleave(k_shot).to(dev)
    query_x = torch.randn(n_way * n_query, 3, img_size, img_size, generator=g).to(dev)
    rows = {}
    for method in methods:
        torch.manual_seed(seed)
        backbone = create_backbone(model_name, img_size, 0).to(dev).eval()
        adapt = build_fewshot_method(method, backbone, max_iter=steps, early_stop=False)
        times = []
        for i in range(rounds + 1):  # the first episode warms up
            synchronize(dev)
            start = time.perf_counter()
            logits = adapt(support_x, support_y, query_x, n_way)
            synchronize(dev)
            if i:
                times.append(time.perf_counter() - start)
        if logits.shape != (n_way * n_query, n_way):
            raise RuntimeError(f'{method} returned logits of shape {tuple(logits.shape)} for {n_way * n_query} '
                               f'queries of {n_way} classes')
        rows[method] = {'seconds_per_episode': median(times), 'episode_times_s': times,
                        'stages': STAGES.get(method, 1), 'steps_per_stage': steps}
    frozen = rows.get('frozen', {}).get('seconds_per_episode')
    for row in rows.values():
        n = row['stages'] * row['steps_per_stage']
        if n and frozen is not None:
            row['seconds_per_step'] = max(row['seconds_per_episode'] - frozen, 0.0) / n
            row['projected_seconds_at_100_steps'] = frozen + row['seconds_per_step'] * row['stages'] * 100
    return {'model': model_name, 'img_size': img_size, 'n_way': n_way, 'k_shot': k_shot, 'n_query': n_query,
            'rounds': rounds, 'device': device, 'methods': rows}


def fewshot_table(result: dict) -> str:
    r = result
    lines = [f'Few-shot adaptation per episode: {r["model"]}, {r["n_way"]}-way {r["k_shot"]}-shot, {r["n_query"]} '
             f'queries per class, {r["img_size"]} px, {r["device"]}; median of {r["rounds"]} episodes after one '
             'warm-up, fixed steps per stage (no early stopping).', '',
             '| method | stages | steps per stage | s per episode | s per step | projected s at 100 steps/stage |',
             '|---|---:|---:|---:|---:|---:|']
    for name, row in r['methods'].items():
        step = row.get('seconds_per_step')
        proj = row.get('projected_seconds_at_100_steps')
        lines.append(f'| {name} | {row["stages"]} | {row["steps_per_stage"] if row["stages"] else "-"} | '
                     f'{row["seconds_per_episode"]:.2f} | {"-" if step is None else f"{step:.3f}"} | '
                     f'{"-" if proj is None else f"{proj:.1f}"} |')
    return '\n'.join(lines)
