"""A replay memory: the few examples of past tasks a continual learner may keep (as dataset indices).

It stores *indices* into each task's training set, never images, so it is saved as a small json beside the run
and reloaded exactly. Two budgets:

- ``per_task=k``: each task keeps ``k`` examples (fewer if its set is smaller);
- ``total=M``: the memory never holds more than ``M``; after each task the quota is ``M // tasks seen`` per task
  (the remainder to the earliest tasks) and older tasks drop their last-drawn examples to make room.

and two ways to draw a task's examples, both seeded by ``(seed, task)``:

- ``'random'``: a uniform sample without replacement of the task's indices;
- ``'reservoir'``: Vitter's algorithm R over the task's stream in the order given (``stream``), as an online
  learner that sees each example once would fill it; with a shuffled stream it is also a uniform sample.

A task's examples are kept in a random order and a shrinking share keeps a prefix, so what remains of a task is
still a uniform sample of it.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FORMAT = 'petl_vision.replay_memory/1'
SAMPLERS = ('random', 'reservoir')


def reservoir_sample(stream: Sequence[int], k: int, rng: np.random.Generator) -> list[int]:
    """Algorithm R: ``k`` items of ``stream`` seen once each, every item kept with probability ``k / len``."""
    kept = list(stream[:k])
    for n in range(k, len(stream)):
        j = int(rng.integers(0, n + 1))
        if j < k:
            kept[j] = stream[n]
    return kept


class ReplayMemory:
    """Indices of kept examples per task, within a per-task quota or a total budget (see the module docstring).

    Args:
        per_task: examples kept per task; or
        total: examples kept over all tasks (exactly one of the two).
        sampler: ``'random'`` or ``'reservoir'``.
        seed: the draws of task ``t`` use a generator seeded with ``(seed, t)``.
    """

    def __init__(self, per_task: int | None = None, total: int | None = None, sampler: str = 'random',
                 seed: int = 0) -> None:
        if (per_task is None) == (total is None):
            raise ValueError(f'give exactly one budget: per_task=k (examples per task) or total=M (over all tasks); '
                             f'got per_task={per_task}, total={total}')
        budget = per_task if per_task is not None else total
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f'the memory budget must be a positive int, got {budget!r}')
        if sampler not in SAMPLERS:
            raise ValueError(f'sampler must be one of {SAMPLERS}, got {sampler!r}')
        self.per_task, self.total, self.sampler, self.seed = per_task, total, sampler, seed
        self.tasks: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.tasks.values())

    def quota(self, n_tasks: int) -> list[int]:
        """The share of each of ``n_tasks`` tasks."""
        if self.per_task is not None:
            return [self.per_task] * n_tasks
        base, extra = divmod(self.total, n_tasks)
        return [base + (t < extra) for t in range(n_tasks)]

    def add_task(self, task: int, stream: Sequence[int]) -> list[int]:
        """Draw task ``task``'s examples from ``stream`` (its training-set indices) and make room within the
        budget; tasks arrive in order 0, 1, 2, ... Returns the indices kept for ``task``."""
        if task != len(self.tasks):
            raise ValueError(f'tasks are added in order: the memory holds tasks {sorted(self.tasks)}, so the next '
                             f'is {len(self.tasks)}, got {task}')
        stream = [int(i) for i in stream]
        if len(set(stream)) != len(stream):
            raise ValueError(f'task {task}: the stream lists some indices twice; give each training example once')
        rng = np.random.default_rng((self.seed, task))
        k = min(self.quota(task + 1)[task], len(stream))
        if self.sampler == 'random':
            drawn = [stream[i] for i in rng.choice(len(stream), size=k, replace=False)]
        else:  # the reservoir's slots are not in random order (early items keep their slot): shuffle them, so any
            drawn = [int(i) for i in rng.permutation(reservoir_sample(stream, k, rng))]  # prefix is a uniform subset
        self.tasks[task] = drawn
        for t, q in enumerate(self.quota(task + 1)):
            self.tasks[t] = self.tasks[t][:q]
        return list(self.tasks[task])

    def items(self) -> list[tuple[int, int]]:
        """Every kept example as ``(task, index in that task's training set)``, task by task."""
        return [(t, i) for t, idx in self.tasks.items() for i in idx]

    def state(self) -> dict:
        return {'format': FORMAT, 'per_task': self.per_task, 'total': self.total, 'sampler': self.sampler,
                'seed': self.seed, 'tasks': {str(t): idx for t, idx in self.tasks.items()}}

    def save(self, path: str | Path) -> Path:
        """Write the memory as json (its budget, sampler, seed and the indices of every task)."""
        path = Path(path)
        path.write_text(json.dumps(self.state(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReplayMemory:
        """The memory :meth:`save` wrote."""
        state = json.loads(Path(path).read_text())
        if state.get('format') != FORMAT:
            raise ValueError(f'{path} is not a replay memory file (format {state.get("format")!r}, expected '
                             f'{FORMAT!r}); write one with ReplayMemory.save')
        memory = cls(per_task=state['per_task'], total=state['total'], sampler=state['sampler'], seed=state['seed'])
        memory.tasks = {int(t): [int(i) for i in idx] for t, idx in sorted(state['tasks'].items(), key=lambda kv:
                                                                           int(kv[0]))}
        return memory
