"""How many CPU threads torch uses in the tools: one rule, called at the start of each tool's ``main()``.

torch's default is one intra-op thread per core of the whole machine. Where the process may use fewer CPUs (an
affinity mask, a container's CPU quota) or shares them with other runs, that oversubscribes: on a shared 2-core
machine the quick start took 15 minutes with torch's default and 4 with one thread. The rule, first match wins:

1. ``threads`` passed by the tool (its ``--threads`` flag);
2. the ``PETL_VISION_THREADS`` environment variable;
3. ``OMP_NUM_THREADS`` (also what ``torchrun`` sets for several processes per node);
4. half the CPUs this process may use (affinity and cgroup quota), at least 1, at most :data:`MAX_DEFAULT_THREADS`:
   the other half is left to data loading and to whatever else shares the machine.
"""
import math
import os
from pathlib import Path

ENV_VAR = 'PETL_VISION_THREADS'
MAX_DEFAULT_THREADS = 8
CGROUP = Path('/sys/fs/cgroup')


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None when unlimited/unknown."""
    try:
        if (root / 'cpu.max').is_file():
            quota, period = (root / 'cpu.max').read_text().split()[:2]
        else:
            quota = (root / 'cpu' / 'cpu.cfs_quota_us').read_text().strip()
            period = (root / 'cpu' / 'cpu.cfs_period_us').read_text().strip()
    except (OSError, ValueError):
        return None
    if quota in ('max', '-1') or int(period) <= 0:
        return None
    return int(quota) / int(period)


def available_cpus(cgroup_root: Path = CGROUP) -> int:
    """CPUs this process may run on: its affinity mask, lowered to the cgroup quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root)
    return max(1, min(cpus, math.ceil(limit)) if limit else cpus)


def _positive(value: str | int, source: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f'{source}={value!r} is not a thread count; give a whole number >= 1 (e.g. {source}=1)')
    return n


def choose_threads(threads: int | None = None, environ: dict[str, str] | None = None,
                   cpus: int | None = None) -> tuple[int, str]:
    """The thread count and where it came from (``'--threads'``, the variable's name, or ``'default'``)."""
    environ = os.environ if environ is None else environ
    if threads is not None:
        return _positive(threads, '--threads'), '--threads'
    for name in (ENV_VAR, 'OMP_NUM_THREADS'):
        if environ.get(name, '').strip():
            return _positive(environ[name].strip(), name), name
    cpus = available_cpus() if cpus is None else cpus
    return max(1, min(MAX_DEFAULT_THREADS, cpus // 2)), 'default'


THREADS_HELP = ('torch CPU threads (default: PETL_VISION_THREADS, OMP_NUM_THREADS, else half the CPUs this process '
                'may use, at most 8)')


def add_threads_argument(parser) -> None:
    """The tools' common ``--threads N`` flag (pass its value to :func:`set_torch_threads`)."""
    parser.add_argument('--threads', type=int, help=THREADS_HELP)


def set_torch_threads(threads: int | None = None) -> int:
    """Apply :func:`choose_threads` to torch (``torch.set_num_threads``); returns the count."""
    import torch

    n, _ = choose_threads(threads)
    torch.set_num_threads(n)
    return n


def apply_threads_argument(parser, args) -> int:
    """:func:`set_torch_threads` with the parsed ``--threads``; a bad count (the flag or the environment) is the
    parser's usage error."""
    try:
        return set_torch_threads(args.threads)
    except ValueError as err:
        parser.error(str(err))
