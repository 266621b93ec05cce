import math

import numpy as np
import pytest
import torch
from torch import nn

from petl_vision.datasets.episodes import EpisodeSampler, FixedProtocol, MetaDatasetProtocol
from petl_vision.fewshot import (FewShotDomain, FewShotEvaluator, confidence_interval95, fetch_from_dataset,
                                 frozen_prototype_baseline)

NUM_CLASSES, PER_CLASS, DIM = 8, 12, 8


DEFAULT_PROTOCOL = FixedProtocol(n_way=5, k_shot=2, n_query=3)


def clustered_domain(name: str, protocol=DEFAULT_PROTOCOL) -> FewShotDomain:
    """Item i of class c is the basis vector e_c plus small noise: nearest centroid is always right."""
    labels = np.repeat(np.arange(NUM_CLASSES), PER_CLASS)
    x = torch.eye(DIM)[labels] + 0.05 * torch.randn(len(labels), DIM, generator=torch.Generator().manual_seed(0))
    return FewShotDomain(name, EpisodeSampler(labels, protocol, seed=0), lambda idx: x[torch.as_tensor(idx)])


def test_confidence_interval_formula():
    acc = [0.5, 1.0, 0.75, 0.75]  # mean 0.75, population std sqrt(0.125 / 4)
    assert confidence_interval95(acc) == pytest.approx(1.96 * math.sqrt(0.125 / 4) / 2)
    assert confidence_interval95([0.3] * 10) == pytest.approx(0.0, abs=1e-12)


def test_frozen_baseline_and_constant_predictor_accuracies(tmp_path):
    model = nn.Flatten()

    def always_class_0(sx, sy, qx, n_way):
        return nn.functional.one_hot(torch.zeros(len(qx), dtype=torch.long), n_way).float()

    domains = [clustered_domain('clusters'), clustered_domain('clusters_md', MetaDatasetProtocol(max_ways=8))]
    results = FewShotEvaluator(frozen_prototype_baseline(model), model, num_episodes=6, progress=False
                               ).evaluate(domains)
    assert results.table() == {'clusters': {'episodes': 6, 'accuracy': 100.0, 'ci95': 0.0},
                               'clusters_md': {'episodes': 6, 'accuracy': 100.0, 'ci95': 0.0}}
    # balanced queries: predicting class 0 is right on exactly 1/N of them
    results = FewShotEvaluator(always_class_0, model, num_episodes=4, progress=False).evaluate(domains[:1])
    np.testing.assert_allclose(results.domains['clusters'].accuracies, [0.2] * 4)
    assert results.average == pytest.approx(20.0)
    results.to_csv(tmp_path / 'fewshot.csv')
    assert (tmp_path / 'fewshot.csv').read_text().splitlines() == ['domain,episodes,accuracy,ci95',
                                                                   'clusters,4,20.00,0.00']


def test_per_domain_mean_and_interval():
    # 2-way, one query per class (grouped by class): episodes 0 and 1 answer right (accuracy 1),
    # episodes 2 and 3 always say class 0 (accuracy 1/2): mean 0.75, population std 0.25
    calls = []

    def right_then_constant(sx, sy, qx, n_way):
        calls.append(qx)
        answer = torch.arange(n_way) if len(calls) <= 2 else torch.zeros(n_way, dtype=torch.long)
        return nn.functional.one_hot(answer, n_way).float()

    domain = clustered_domain('d', FixedProtocol(n_way=2, k_shot=1, n_query=1))
    results = FewShotEvaluator(right_then_constant, nn.Flatten(), num_episodes=4, progress=False).evaluate([domain])
    np.testing.assert_allclose(results.domains['d'].accuracies, [1.0, 1.0, 0.5, 0.5])
    row = results.table()['d']
    assert row['accuracy'] == pytest.approx(75.0) and row['ci95'] == pytest.approx(100 * 1.96 * 0.25 / 2)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(DIM, 5)
        self.bn = nn.BatchNorm1d(5)

    def forward(self, x):
        return self.bn(self.fc(x))


def test_each_episode_starts_from_the_same_model_state():
    model = Tiny().eval()
    model.fc.bias.requires_grad_(False)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    starts = []

    def train_and_predict(sx, sy, qx, n_way):
        starts.append(({k: v.clone() for k, v in model.state_dict().items()}, model.training,
                       model.fc.bias.requires_grad))
        model.train()  # BatchNorm running statistics change too
        model.fc.bias.requires_grad_(True)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(sx)[:, :n_way], sy).backward()
            opt.step()
        return model(qx)[:, :n_way]

    FewShotEvaluator(train_and_predict, model, num_episodes=3, progress=False).evaluate([clustered_domain('d')])
    assert len(starts) == 3
    for state, training, bias_grad in starts:
        assert training is False and bias_grad is False
        for k, v in initial.items():
            torch.testing.assert_close(state[k], v, rtol=0, atol=0)
    for k, v in model.state_dict().items():  # and the model is left as it was
        torch.testing.assert_close(v, initial[k], rtol=0, atol=0)
    assert model.training is False and model.fc.bias.requires_grad is False


def test_episode_rng_is_seeded_and_global_rng_untouched():
    def random_logits(sx, sy, qx, n_way):
        return torch.randn(len(qx), n_way)

    before = torch.random.get_rng_state()
    runs = [FewShotEvaluator(random_logits, nn.Flatten(), num_episodes=10, seed=s, progress=False)
            .evaluate([clustered_domain('d')]).domains['d'].accuracies for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert torch.equal(torch.random.get_rng_state(), before)


def test_errors_name_the_problem():
    model = Tiny()

    def grows_a_module(sx, sy, qx, n_way):
        model.extra = nn.Linear(2, 2)
        return torch.zeros(len(qx), n_way)

    with pytest.raises(RuntimeError, match="changed the model structure \\(added \\['extra.bias'"):
        FewShotEvaluator(grows_a_module, model, num_episodes=1, progress=False).evaluate([clustered_domain('d')])
    del model.extra

    def wrong_shape(sx, sy, qx, n_way):
        return torch.zeros(len(qx), n_way + 1)

    with pytest.raises(ValueError, match='expected \\(num_query, n_way\\) = \\(15, 5\\)'):
        FewShotEvaluator(wrong_shape, model, num_episodes=1, progress=False).evaluate([clustered_domain('d')])


def test_fetch_from_dataset_and_progress_bar():
    labels = np.repeat(np.arange(NUM_CLASSES), PER_CLASS)
    dataset = [{'inputs': torch.eye(DIM)[c], 'gt_label': int(c)} for c in labels]
    fetch = fetch_from_dataset(dataset)
    torch.testing.assert_close(fetch(np.array([0, PER_CLASS])), torch.eye(DIM)[[0, 1]])
    doubled = fetch_from_dataset(dataset, preprocess=lambda x: 2 * x - 1)
    torch.testing.assert_close(doubled(np.array([PER_CLASS])), 2 * torch.eye(DIM)[[1]] - 1)
    sampler = EpisodeSampler([d['gt_label'] for d in dataset], FixedProtocol(n_way=3, k_shot=1, n_query=2))
    model = nn.Flatten()
    results = FewShotEvaluator(frozen_prototype_baseline(model), model, num_episodes=2, progress=True
                               ).evaluate([FewShotDomain('list', sampler, fetch)])
    assert results.domains['list'].mean == 1.0
