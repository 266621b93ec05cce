"""The replay memory keeps its quota or budget, samples uniformly (random and reservoir), is seeded, and
round-trips through its json file."""
import json

import numpy as np
import pytest

from petl_vision.continual import ReplayMemory, reservoir_sample


def test_per_task_quota_and_small_tasks():
    mem = ReplayMemory(per_task=10, seed=3)
    kept0 = mem.add_task(0, range(100, 200))
    mem.add_task(1, range(7))  # fewer examples than the quota: all kept
    assert len(kept0) == 10 and len(set(kept0)) == 10 and set(kept0) <= set(range(100, 200))
    assert sorted(mem.tasks[1]) == list(range(7)) and len(mem) == 17
    assert ReplayMemory(per_task=10, seed=3).add_task(0, range(100, 200)) == kept0  # seeded
    assert ReplayMemory(per_task=10, seed=4).add_task(0, range(100, 200)) != kept0


@pytest.mark.parametrize('sampler', ['random', 'reservoir'])
def test_total_budget_shrinks_old_tasks_to_a_prefix(sampler):
    mem = ReplayMemory(total=30, sampler=sampler, seed=0)
    first = mem.add_task(0, range(1000))
    assert len(first) == 30
    mem.add_task(1, range(1000, 2000))
    assert [len(mem.tasks[t]) for t in (0, 1)] == [15, 15] and mem.tasks[0] == first[:15]
    mem.add_task(2, range(2000, 3000))
    mem.add_task(3, range(3000, 4000))
    assert [len(mem.tasks[t]) for t in range(4)] == [8, 8, 7, 7] and len(mem) == 30  # 30 // 4, remainder first
    assert mem.tasks[0] == first[:8]


@pytest.mark.parametrize('sampler', ['random', 'reservoir'])
def test_samplers_are_uniform_and_any_prefix_too(sampler):
    """Over 3,000 seeds each of 20 items is kept with probability k / n = 0.25, also in the kept list's first
    two slots (0.1), which a total budget keeps when it shrinks (an unshuffled reservoir fails this)."""
    n, k, runs = 20, 5, 3000
    counts, prefix = np.zeros(n), np.zeros(n)
    for seed in range(runs):
        kept = ReplayMemory(per_task=k, sampler=sampler, seed=seed).add_task(0, range(n))
        counts[kept] += 1
        prefix[kept[:2]] += 1
    assert np.abs(counts / runs - k / n).max() < 0.04
    assert np.abs(prefix / runs - 2 / n).max() < 0.03


def test_reservoir_keeps_the_stream_when_it_fits_and_every_item_once():
    rng = np.random.default_rng(0)
    assert reservoir_sample([4, 5, 6], 5, rng) == [4, 5, 6]
    kept = reservoir_sample(list(range(50)), 10, rng)
    assert len(set(kept)) == 10


def test_save_load_round_trip(tmp_path):
    mem = ReplayMemory(total=12, sampler='reservoir', seed=7)
    for t in range(3):
        mem.add_task(t, range(t * 100, t * 100 + 40))
    path = mem.save(tmp_path / 'memory.json')
    back = ReplayMemory.load(path)
    assert back.tasks == mem.tasks and back.items() == mem.items() and back.state() == mem.state()
    assert json.loads(path.read_text())['format'] == 'petl_vision.replay_memory/1'
    back.add_task(3, range(300, 340))  # a reloaded memory continues the run
    assert len(back) == 12 and [len(back.tasks[t]) for t in range(4)] == [3, 3, 3, 3]


def test_bad_use_is_refused(tmp_path):
    with pytest.raises(ValueError, match='exactly one budget'):
        ReplayMemory(per_task=5, total=10)
    with pytest.raises(ValueError, match='positive int'):
        ReplayMemory(per_task=0)
    with pytest.raises(ValueError, match='sampler must be one of'):
        ReplayMemory(per_task=5, sampler='herding')
    mem = ReplayMemory(per_task=5)
    with pytest.raises(ValueError, match='the next is 0, got 1'):
        mem.add_task(1, range(10))
    with pytest.raises(ValueError, match='lists some indices twice'):
        mem.add_task(0, [1, 1, 2])
    assert len(mem) == 0
    (tmp_path / 'x.json').write_text('{"format": "other"}')
    with pytest.raises(ValueError, match='not a replay memory file'):
        ReplayMemory.load(tmp_path / 'x.json')
