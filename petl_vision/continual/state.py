"""What a continual run keeps between stages, so that a killed run continues at the next stage.

``save_state`` writes into one folder (first beside it as ``<folder>.tmp``; then the previous state is renamed to
``<folder>.old``, the new one into place, and the previous one deleted, so a kill at any point leaves a whole state:
:func:`recover_state`, called by ``save_state`` and ``restore_state``, puts ``<folder>.old`` back when the kill came
between the two renames): every adapter (``pv.save_tuners``: the stages' and ``seq_ft``), the L2R routers
(``routers.safetensors``, keys ``<site>::<tensor>``), the replay memory (json), the task prototypes and SimpleCIL's
class sums (``prototypes.safetensors``) and ``progress.json`` (stages done, adapter names, matrices, routing
accuracy, losses, timings). ``restore_state`` loads them into a fresh run built from the same config.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import petl_vision as pv
from petl_vision.continual.baselines import SimpleCIL
from petl_vision.continual.evaluate import SEQ_ADAPTER
from petl_vision.continual.l2r import Router
from petl_vision.continual.memory import ReplayMemory

if TYPE_CHECKING:
    from petl_vision.continual.harness import ContinualRun

STATE_FORMAT = 'petl_vision.continual_state/1'


def save_state(run: ContinualRun, folder: str | Path) -> Path:
    """Write the state after the completed stages into ``folder`` (replaced whole, written beside it first)."""
    folder = recover_state(folder)
    tmp = folder.with_name(folder.name + '.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / 'adapters').mkdir(parents=True)
    for name in [*run.l2r.adapters, *([SEQ_ADAPTER] if SEQ_ADAPTER in pv.list_adapters(run.model) else [])]:
        pv.save_tuners(run.model, tmp / 'adapters' / f'{name}.safetensors', adapter=name)
    routers = {'model': run.l2r.router} if run.l2r.router is not None else run.l2r.routers
    if routers:
        save_file({f'{site}::{k}': v.contiguous().cpu() for site, r in routers.items()
                   for k, v in r.state_dict().items()}, tmp / 'routers.safetensors')
    run.memory.save(tmp / 'memory.json')
    protos = {**(run.prototypes.state() if run.prototypes.sums else {}),
              **(run.simplecil.state() if run.simplecil is not None else {})}
    if protos:
        save_file(protos, tmp / 'prototypes.safetensors')
    progress = {'format': STATE_FORMAT, 'completed': run.completed, 'adapters': list(run.l2r.adapters),
                'matrices': {m: np.where(np.isnan(a), None, a).tolist() for m, a in run.R.items()},
                'routing': run.routing, 'losses': run.losses, 'seconds': run.seconds}
    (tmp / 'progress.json').write_text(json.dumps(progress, indent=1))
    old = folder.with_name(folder.name + '.old')
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def recover_state(folder: str | Path) -> Path:
    """Finish a :func:`save_state` that was killed while swapping folders: ``<folder>.old`` (the previous state) is
    put back when ``folder`` is missing, and deleted when ``folder`` (the new state) is in place."""
    folder = Path(folder)
    old = folder.with_name(folder.name + '.old')
    if old.exists():
        if folder.exists():
            shutil.rmtree(old)
        else:
            old.rename(folder)
    return folder


def restore_state(run: ContinualRun, folder: str | Path) -> None:
    """Continue after the stages a :func:`save_state` recorded (on a fresh run built from the same config)."""
    folder = recover_state(folder)
    progress = json.loads((folder / 'progress.json').read_text())
    if progress.get('format') != STATE_FORMAT:
        raise ValueError(f'{folder} is not a continual run state (format {progress.get("format")!r})')
    if run.completed or run.l2r.adapters:
        raise RuntimeError('restore into a fresh ContinualRun (this one has run stages already)')
    expected = [s.name for s in run.stages[:progress['completed']]]
    if progress['adapters'] != expected:
        raise ValueError(f'{folder} holds the adapters {progress["adapters"]}, but this sequence starts with '
                         f'{expected}: it was saved by another config')
    for name in progress['adapters']:
        pv.load_tuners(run.model, folder / 'adapters' / f'{name}.safetensors', adapter=name)
    run.l2r.adapters = list(progress['adapters'])
    if (folder / 'adapters' / f'{SEQ_ADAPTER}.safetensors').exists():
        pv.load_tuners(run.model, folder / 'adapters' / f'{SEQ_ADAPTER}.safetensors', adapter=SEQ_ADAPTER)
    _restore_routers(run, folder / 'routers.safetensors')
    run.memory = ReplayMemory.load(folder / 'memory.json')
    if (folder / 'prototypes.safetensors').exists():
        state = load_file(folder / 'prototypes.safetensors')
        if 'prototypes_sums' in state:
            run.prototypes.load(state)
        if 'sums' in state:
            run.simplecil = SimpleCIL(*state['sums'].shape)
            run.simplecil.load(state)
    for m in run.methods:
        run.R[m] = np.array(progress['matrices'][m], dtype=np.float64)
    run.routing, run.losses, run.seconds = progress['routing'], progress['losses'], progress['seconds']
    run.completed = progress['completed']


def _restore_routers(run: ContinualRun, path: Path) -> None:
    if not path.exists():
        return
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, v in load_file(path).items():
        site, k = key.split('::')
        grouped.setdefault(site, {})[k] = v
    routers = {}
    for site, state in grouped.items():
        router = Router(state['net.0.weight'].shape[0], state['net.3.weight'].shape[0],
                        state['net.1.weight'].shape[0], run.l2r.temperature)
        router.load_state_dict(state)
        routers[site] = router.to(run.device).eval()
    if 'model' in routers and run.l2r.granularity == 'model':
        run.l2r.router = routers['model']
    else:
        run.l2r.routers = routers
