"""What a work dir holds, so that ``tools/train.py`` never replaces an earlier run silently.

A work dir *holds a run* when it has any of the files a run leaves to be kept or resumed from: mmengine's
``last_checkpoint`` pointer, a Runner checkpoint (``*.pth``: a file, or a folder of shards under FSDP) or a
tuner-only file of :class:`~petl_vision.engine.TunerCheckpointHook` (``tuners_*.safetensors`` and the best
file's ``tuners_best.json``). Logs (``<timestamp>/``) and the dumped config are not: a run that stopped before its
first checkpoint left nothing a new run could lose.
"""
import json
import shutil
from pathlib import Path

RUN_FILES = ('last_checkpoint', '*.pth', 'tuners_*.safetensors', 'tuners_*.json')


class WorkDirInUse(FileExistsError):
    """Training would replace the run a work dir holds."""


def run_files(work_dir: str | Path) -> list[Path]:
    """The files (and FSDP checkpoint folders) of an earlier run in ``work_dir``, sorted; [] when it holds none."""
    work_dir = Path(work_dir)
    return sorted({p for pattern in RUN_FILES for p in work_dir.glob(pattern)})


def latest_checkpoint(work_dir: str | Path) -> Path | None:
    """The checkpoint ``work_dir/last_checkpoint`` names (mmengine writes the path as the run saw it; a relative
    one is also looked up by name in ``work_dir``); None without a ``last_checkpoint``."""
    pointer = Path(work_dir) / 'last_checkpoint'
    if not pointer.is_file():
        return None
    named = Path(pointer.read_text().strip())
    for candidate in (named, Path(work_dir) / named.name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f'{pointer} names the checkpoint {named}, which does not exist; resume from another '
                            'one with --resume PATH, or start over with --overwrite')


def _best_record(path: Path) -> dict:
    """TunerCheckpointHook's ``tuners_best.json`` (``{metric: value, 'epoch': E, 'iter': I}``), {} if unreadable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and all(isinstance(v, (int, float)) for v in record.values()) else {}


def describe_run(work_dir: str | Path, files: list[Path]) -> str:
    """One line about the run in ``work_dir``: its latest checkpoint, its best tuner file's metric, the file count."""
    parts = []
    try:
        checkpoint = latest_checkpoint(work_dir)
    except FileNotFoundError:
        checkpoint = None
    if checkpoint is not None:
        parts.append(f'last_checkpoint -> {checkpoint.name}')
    best = _best_record(Path(work_dir) / 'tuners_best.json')
    if best:
        metrics = ', '.join(f'{k}={v:g}' for k, v in best.items() if k not in ('epoch', 'iter'))
        parts.append(f'tuners_best.safetensors with {metrics} at epoch {best.get("epoch")}')
    parts.append(f'{len(files)} files: {", ".join(p.name for p in files[:6])}{", ..." if len(files) > 6 else ""}')
    return '; '.join(parts)


def refuse_to_replace(work_dir: str | Path, files: list[Path]) -> WorkDirInUse:
    """The error for a new run into ``work_dir``, which holds ``files`` of an earlier one."""
    resumable = (Path(work_dir) / 'last_checkpoint').is_file()
    options = 'Continue it with --resume, train' if resumable else 'It has no checkpoint to --resume from. Train'
    return WorkDirInUse(f'{work_dir} holds an earlier run ({describe_run(work_dir, files)}); training into it would '
                        f'replace that run. {options} into a fresh --work-dir DIR, or pass --overwrite to delete '
                        'those files and start over')


def remove_run(files: list[Path]) -> None:
    """Delete an earlier run's files (``--overwrite``); logs stay."""
    for path in files:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def resolve_start(work_dir: str | Path, resume: bool, load_from: str | None,
                  overwrite: bool = False) -> tuple[bool, str | None, list[Path], str | None]:
    """How a run into ``work_dir`` starts: ``(resume, load_from, files to delete first, message)``.

    - ``resume`` with ``load_from`` (``--resume PATH``): that checkpoint, which must exist.
    - ``resume`` alone (``--resume``): the work dir's latest checkpoint; without one, a new run (said so), unless the
      work dir holds other files of a run (tuner files), which a new run would replace: refused.
    - otherwise a new run (``load_from`` only loads weights), refused with :class:`WorkDirInUse` when the work dir
      holds a run, unless ``overwrite``: then that run's files are returned for deletion.
    """
    if resume and load_from:
        if not Path(load_from).exists():
            raise FileNotFoundError(f'--resume {load_from}: no such checkpoint')
        return True, load_from, [], f'resuming from {load_from}'
    files = run_files(work_dir)
    if resume:
        checkpoint = latest_checkpoint(work_dir)
        if checkpoint is not None:
            return True, str(checkpoint), [], f'resuming from {checkpoint}, the latest checkpoint in {work_dir}'
        if files:
            raise refuse_to_replace(work_dir, files)
        return False, None, [], f'--resume: no checkpoint in {work_dir} (no last_checkpoint); starting a new run'
    if not files:
        return False, load_from, [], None
    if not overwrite:
        raise refuse_to_replace(work_dir, files)
    return False, load_from, files, f'--overwrite: deleting the {len(files)} files of the earlier run in {work_dir}'
