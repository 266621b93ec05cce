import math

import numpy as np
import pytest

from petl_vision.datasets.episodes import EpisodeSampler, FixedProtocol, MetaDatasetProtocol


def interleaved_labels(sizes):
    """Labels with ``sizes[c]`` items of class c, classes interleaved so indices are not grouped."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])
    return np.random.default_rng(123).permutation(labels)


def assert_consistent(episode, labels):
    """Relabelling, grouping and disjointness hold for any protocol."""
    support, query = episode.support_idx, episode.query_idx
    assert len(np.intersect1d(support, query)) == 0
    assert len(np.unique(support)) == len(support) and len(np.unique(query)) == len(query)
    assert len(np.unique(episode.classes)) == episode.n_way
    np.testing.assert_array_equal(labels[support], episode.classes[episode.support_labels])
    np.testing.assert_array_equal(labels[query], episode.classes[episode.query_labels])
    assert set(episode.support_labels.tolist()) == set(range(episode.n_way))


def test_fixed_protocol_counts():
    labels = interleaved_labels([20 + c for c in range(10)])
    sampler = EpisodeSampler(labels, FixedProtocol(n_way=5, k_shot=3, n_query=4), seed=1)
    for i in range(20):
        ep = sampler.episode(i)
        assert_consistent(ep, labels)
        assert ep.n_way == 5
        np.testing.assert_array_equal(np.bincount(ep.support_labels), [3] * 5)
        np.testing.assert_array_equal(np.bincount(ep.query_labels), [4] * 5)


def test_fixed_protocol_skips_small_classes_and_fails_when_too_few():
    labels = interleaved_labels([10, 10, 10, 2, 10, 10])  # class 3 cannot give 1 shot + 5 queries
    sampler = EpisodeSampler(labels, FixedProtocol(n_way=5, k_shot=1, n_query=5))
    np.testing.assert_array_equal(sampler.eligible_classes, [0, 1, 2, 4, 5])
    assert all(3 not in sampler.episode(i).classes for i in range(10))
    with pytest.raises(ValueError, match='needs 5 classes with at least 11 examples'):
        EpisodeSampler(labels, FixedProtocol(n_way=5, k_shot=6, n_query=5))


def test_episodes_depend_only_on_seed_and_index():
    labels = interleaved_labels([30] * 12)
    a = EpisodeSampler(labels, FixedProtocol(), seed=7)
    later = a.episode(5)
    b = EpisodeSampler(labels, FixedProtocol(), seed=7)
    first = b.episode(5)
    for field in ('support_idx', 'support_labels', 'query_idx', 'query_labels', 'classes'):
        np.testing.assert_array_equal(getattr(later, field), getattr(first, field))
    other_seed = EpisodeSampler(labels, FixedProtocol(), seed=8).episode(5)
    assert not np.array_equal(other_seed.support_idx, first.support_idx)
    assert not np.array_equal(a.episode(6).support_idx, first.support_idx)


def test_meta_dataset_protocol_bounds():
    sizes = [4 + 5 * c for c in range(60)]  # 60 classes of 4..299 items
    labels = interleaved_labels(sizes)
    sampler = EpisodeSampler(labels, MetaDatasetProtocol(), seed=0)
    ways = []
    for i in range(300):
        ep = sampler.episode(i)
        assert_consistent(ep, labels)
        ways.append(ep.n_way)
        class_sizes = np.array(sizes)[ep.classes]
        n_query = min(10, (class_sizes // 2).min())
        np.testing.assert_array_equal(np.bincount(ep.query_labels, minlength=ep.n_way), [n_query] * ep.n_way)
        shots = np.bincount(ep.support_labels, minlength=ep.n_way)
        assert shots.min() >= 1 and (shots <= class_sizes - n_query).all()
        assert len(ep.support_idx) <= 500
    assert min(ways) == 5 and max(ways) == 50


def test_meta_dataset_way_capped_by_class_count_and_small_classes_skipped():
    labels = interleaved_labels([1, 8, 8, 8, 8, 8, 8, 8])  # class 0 has one item: no query possible
    sampler = EpisodeSampler(labels, MetaDatasetProtocol(), seed=3)
    np.testing.assert_array_equal(sampler.eligible_classes, np.arange(1, 8))
    ways = {sampler.episode(i).n_way for i in range(60)}
    assert ways == {5, 6, 7}
    assert all(np.bincount(sampler.episode(i).query_labels)[0] == 4 for i in range(10))


def test_meta_dataset_equal_classes_without_noise_get_equal_shots():
    # 5 classes of 1000: query 10, contribution min(100, 990) = 100 per class, so the support size is
    # 5 * ceil(100 * beta) = 5m and, without weight noise, each class gets floor((5m - 5) / 5) + 1 = m.
    labels = interleaved_labels([1000] * 5)
    protocol = MetaDatasetProtocol(min_ways=5, max_ways=5, min_log_weight=0.0, max_log_weight=0.0)
    sampler = EpisodeSampler(labels, protocol, seed=0)
    seen = set()
    for i in range(40):
        ep = sampler.episode(i)
        shots = np.bincount(ep.support_labels)
        assert len(set(shots.tolist())) == 1 and 1 <= shots[0] <= 100
        np.testing.assert_array_equal(np.bincount(ep.query_labels), [10] * 5)
        seen.add(int(shots[0]))
    assert len(seen) > 20  # beta varies across episodes


def test_meta_dataset_budget_cap_and_class_size_weights():
    # max support 50: 5 classes of 1000 give 5 * ceil(100 beta) capped at 50, shots floor(45 / 5) + 1 = 10
    # whenever ceil(100 beta) >= 10.
    capped = MetaDatasetProtocol(min_ways=5, max_ways=5, max_support_set_size=50, min_log_weight=0.0,
                                 max_log_weight=0.0)
    sampler = EpisodeSampler(interleaved_labels([1000] * 5), capped, seed=0)
    totals = [len(sampler.episode(i).support_idx) for i in range(40)]
    assert max(totals) == 50 and sum(t == 50 for t in totals) > 30
    # Two classes of 200 and 600 without noise: proportions 1/4 and 3/4 of support size 2m - 2 extra shots.
    protocol = MetaDatasetProtocol(min_ways=2, max_ways=2, min_log_weight=0.0, max_log_weight=0.0)
    sampler = EpisodeSampler(interleaved_labels([200, 600]), protocol, seed=0)
    for i in range(40):
        ep = sampler.episode(i)
        small, large = np.bincount(ep.support_labels)[np.argsort(ep.classes)]
        assert any(small == math.floor((m - 1) / 2) + 1 and large == math.floor(1.5 * (m - 1)) + 1
                   for m in range(1, 101))


def test_invalid_inputs():
    with pytest.raises(ValueError, match='1-D sequence of integers'):
        EpisodeSampler([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match='max_support_set_size'):
        MetaDatasetProtocol(max_support_set_size=20)
    with pytest.raises(ValueError, match='episode index'):
        EpisodeSampler(interleaved_labels([20] * 5)).episode(-1)
