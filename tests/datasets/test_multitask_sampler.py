"""MultiTaskDataset (concatenation, task tags) and TaskBalancedSampler (proportions, determinism, ranks)."""
import math
from collections import Counter

import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import DATA_SAMPLERS, DefaultScope
from torch.utils.data import DataLoader, Dataset

from petl_vision.datasets import MultiTaskDataset, TaskBalancedSampler, task_probabilities
from petl_vision.datasets import multitask as multitask_module

SIZES = {'a': 100, 'b': 400, 'c': 1600}


class Items(Dataset):
    """``n`` packed samples whose label is their index; ``classes`` in the metainfo."""

    def __init__(self, n: int, classes: int = 3, task: str | None = None) -> None:
        self.n, self.metainfo, self.task = n, {'classes': tuple(range(classes))}, task

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        sample = {'inputs': torch.full((3, 2, 2), i % 256, dtype=torch.uint8), 'data_samples': i}
        return sample if self.task is None else {**sample, 'task': self.task}


def dataset(sizes=SIZES) -> MultiTaskDataset:
    return MultiTaskDataset({t: Items(n, classes=2 + k) for k, (t, n) in enumerate(sizes.items())})


def task_shares(sampler: TaskBalancedSampler, ds: MultiTaskDataset) -> dict[str, float]:
    tasks = Counter(ds.locate(i)[0] for i in sampler)
    return {t: tasks[t] / len(sampler) for t in ds.tasks}


def test_task_probabilities_formula():
    assert task_probabilities(SIZES, 'balanced') == pytest.approx({'a': 1 / 3, 'b': 1 / 3, 'c': 1 / 3})
    assert task_probabilities(SIZES, 'temperature', 1.0) == pytest.approx({'a': 1 / 21, 'b': 4 / 21, 'c': 16 / 21})
    assert task_probabilities(SIZES, 'temperature', 2.0) == pytest.approx({'a': 1 / 7, 'b': 2 / 7, 'c': 4 / 7})
    assert task_probabilities(SIZES, 'temperature', math.inf) == pytest.approx({t: 1 / 3 for t in SIZES})
    tiny_t = task_probabilities({'x': 10 ** 6, 'y': 10 ** 5}, 'temperature', 0.01)  # n ** 100: no overflow
    assert tiny_t['x'] == pytest.approx(1.0) and tiny_t['y'] < 1e-90


@pytest.mark.parametrize('mode, temperature', [('balanced', None), ('temperature', 1.0), ('temperature', 2.0),
                                               ('temperature', 5.0)])
def test_sampled_shares_match_the_formula_over_20000_draws(mode, temperature):
    ds = dataset()
    expected = task_probabilities(SIZES, mode, temperature)
    sampler = TaskBalancedSampler(ds, mode=mode, temperature=temperature, epoch_length=20_000, seed=3)
    shares = task_shares(sampler, ds)
    assert all(abs(shares[t] - expected[t]) < 0.01 for t in SIZES), (shares, expected)
    # the default epoch (the sum of the sizes, 2,100 draws) over ten epochs too
    default = TaskBalancedSampler(ds, mode=mode, temperature=temperature, seed=3)
    assert len(default) == 2100
    drawn = Counter()
    for epoch in range(10):
        default.set_epoch(epoch)
        drawn.update(ds.locate(i)[0] for i in default)
    assert all(abs(drawn[t] / 21_000 - expected[t]) < 0.01 for t in SIZES), (drawn, expected)


def test_items_are_drawn_in_passes_without_replacement():
    ds = dataset()
    order = TaskBalancedSampler(ds, mode='balanced', seed=0).global_order().tolist()  # 700 draws per task
    per_item = Counter(order)
    assert {per_item[i] for i in ds.task_ranges['a']} == {7}  # 100 items, each exactly 7 times
    drawn_c = [i for i in order if i in ds.task_ranges['c']]
    assert len(drawn_c) == 700 and len(set(drawn_c)) == 700  # 1,600 items: no repeat
    assert TaskBalancedSampler(ds, mode='temperature', temperature=1.0, seed=0).global_order().sort().values.tolist() \
        == list(range(2100))  # proportional, one epoch of the sum of the sizes: every item once


def test_order_is_a_function_of_seed_and_epoch():
    ds = dataset()
    sampler = TaskBalancedSampler(ds, mode='temperature', temperature=2.0, seed=7)
    first = list(sampler)
    assert list(sampler) == first == list(TaskBalancedSampler(ds, mode='temperature', temperature=2.0, seed=7))
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    assert list(TaskBalancedSampler(ds, mode='temperature', temperature=2.0, seed=8)) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_every_epoch_gives_each_task_its_share_rounded_and_batches_mix_tasks():
    ds = dataset()
    sampler = TaskBalancedSampler(ds, mode='temperature', temperature=2.0, seed=0)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        order = sampler.global_order().tolist()
        counts = Counter(ds.locate(i)[0] for i in order)
        assert all(abs(counts[t] - 2100 * p) < 1 for t, p in sampler.probabilities.items())  # 300, 600, 1200
    batches = [order[i:i + 30] for i in range(0, len(order), 30)]
    tasks_per_batch = [len({ds.locate(i)[0] for i in batch}) for batch in batches]
    assert sum(n == 3 for n in tasks_per_batch) > 0.9 * len(batches)


@pytest.mark.parametrize('epoch_length', [2100, 2101])
def test_two_ranks_take_disjoint_shares_of_one_order(monkeypatch, epoch_length):
    ds = dataset()
    ranks = []
    for rank in (0, 1):
        monkeypatch.setattr(multitask_module, 'get_dist_info', lambda rank=rank: (rank, 2))
        sampler = TaskBalancedSampler(ds, mode='temperature', temperature=1.0, epoch_length=epoch_length, seed=5)
        sampler.set_epoch(2)
        ranks.append(list(sampler))
    assert len(ranks[0]) == len(ranks[1]) == math.ceil(epoch_length / 2)
    interleaved = [i for pair in zip(*ranks) for i in pair]
    assert interleaved == sampler.global_order().tolist()
    if epoch_length == 2100:  # every item once: the ranks' items are disjoint and cover the data
        assert set(ranks[0]).isdisjoint(ranks[1]) and set(ranks[0]) | set(ranks[1]) == set(range(2100))


def test_multitask_dataset_tags_and_locates():
    ds = MultiTaskDataset({'digit': Items(3, classes=10), 'parity': Items(2, classes=2, task='other')})
    assert len(ds) == 5 and ds.tasks == ('digit', 'parity')
    assert ds.task_ranges == {'digit': range(0, 3), 'parity': range(3, 5)}
    assert ds.num_classes == {'digit': 10, 'parity': 2}
    assert ds.metainfo['task_classes']['parity'] == (0, 1)
    assert ds.locate(3) == ('parity', 0) and ds.locate(-1) == ('parity', 1)
    assert ds[4]['task'] == 'parity' and ds[4]['data_samples'] == 1  # the wrapper's name wins over the inner one
    with pytest.raises(IndexError, match='out of range'):
        ds[5]
    batch = default_collate([ds[i] for i in (0, 4, 1)])
    assert batch['task'] == ['digit', 'parity', 'digit'] and batch['data_samples'].tolist() == [0, 1, 1]


@pytest.mark.parametrize('datasets, message', [
    ({}, 'at least one task'),
    ({'__base__': Items(2)}, 'other than'),
    ({'a': Items(2), 'b': Items(0)}, r"tasks \['b'\] have no items"),
])
def test_multitask_dataset_errors(datasets, message):
    with pytest.raises(ValueError, match=message):
        MultiTaskDataset(datasets)


def test_sampler_errors():
    with pytest.raises(TypeError, match='MultiTaskDataset'):
        TaskBalancedSampler(Items(4))
    with pytest.raises(ValueError, match='epoch_length must be a positive int'):
        TaskBalancedSampler(dataset(), epoch_length=0)
    with pytest.raises(ValueError, match="only read with mode='temperature'"):
        TaskBalancedSampler(dataset(), temperature=2.0)
    with pytest.raises(ValueError, match='needs temperature > 0'):
        TaskBalancedSampler(dataset(), mode='temperature')
    with pytest.raises(ValueError, match='mode must be one of'):
        TaskBalancedSampler(dataset(), mode='proportional')


def test_digits_tasks_from_configs_through_mmengine_registries():
    with DefaultScope.overwrite_default_scope('petl_vision'):
        pipeline = [dict(type='PackInputs')]
        ds = MultiTaskDataset({t: dict(type='DigitsMultiTask', task=t, domain=d, split='train', pipeline=pipeline)
                               for t, d in (('digit', 'rotated_60'), ('parity', 'thick'), ('loops', 'inverted'))})
        sampler = DATA_SAMPLERS.build(dict(type='TaskBalancedSampler', mode='balanced'),
                                      default_args=dict(dataset=ds, seed=0))  # as mmengine's Runner builds it
    assert isinstance(sampler, TaskBalancedSampler) and ds.num_classes == {'digit': 10, 'parity': 2, 'loops': 3}
    batch = next(iter(DataLoader(ds, batch_size=24, sampler=sampler, collate_fn=default_collate)))
    assert batch['inputs'].shape == (24, 3, 32, 32) and set(batch['task']) == {'digit', 'parity', 'loops'}
    for task, label in zip(batch['task'], batch['data_samples'].tolist()):
        assert 0 <= label < ds.num_classes[task]


def test_samples_per_task_keeps_a_seeded_subset_of_every_task():
    sizes = {'a': 40, 'b': 25}

    def subsets(seed, tasks=sizes):
        ds = MultiTaskDataset({t: Items(n) for t, n in tasks.items()}, samples_per_task=10, subset_seed=seed)
        return ds, {t: [ds[i]['data_samples'] for i in ds.task_ranges[t]] for t in ds.tasks}

    ds, picked = subsets(0)
    assert len(ds) == 20 and {t: len(r) for t, r in ds.task_ranges.items()} == {'a': 10, 'b': 10}
    assert all(len(set(v)) == 10 and max(v) < sizes[t] for t, v in picked.items())  # distinct items of each task
    assert subsets(0)[1] == picked and subsets(1)[1] != picked  # a function of the seed
    assert all(ds.source_index(i) == (ds.locate(i)[0], ds[i]['data_samples']) for i in range(len(ds)))
    assert subsets(0, {'b': 25})[1]['b'] == picked['b']  # a task's subset does not depend on the other tasks
    with pytest.raises(ValueError, match=r"more than tasks \{'b': 25\} hold"):
        MultiTaskDataset({t: Items(n) for t, n in sizes.items()}, samples_per_task=30)
    with pytest.raises(ValueError, match='positive int'):
        MultiTaskDataset({'a': Items(3)}, samples_per_task=0)
