"""L2R on a tiny ViT: per-task LoRA adapters trained in isolation, a router trained on the replay memory only that
picks each sample's own adapter on separable synthetic tasks, and one-hot routing equal to the adapter alone."""
import pytest
import torch

import petl_vision as pv
from petl_vision.continual import L2R, ReplayMemory, memory_samples, train_adapter
from tests.conftest import tiny_vit

PLAN = [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 4}]
TASKS = 3


def task_data(task: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Task ``t``: images tinted in channel ``t`` (what the router must see); label 1 when channel ``t + 1`` is
    bright too (each task's own rule, which its adapter must learn: the next task's tint fools it)."""
    g = torch.Generator().manual_seed(seed * 10 + task)
    x = torch.randn(n, 3, 32, 32, generator=g) * 0.5
    x[:, task] += 1.5
    y = torch.randint(0, 2, (n,), generator=g)
    x[y == 1, (task + 1) % 3] += 1.0
    return x, y


class Recorded(torch.utils.data.Dataset):
    """A task's training set that records which samples are read."""

    def __init__(self, x, y):
        self.x, self.y, self.read = x, y, set()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.read.add(i)
        return self.x[i], self.y[i]


def train_sequence(**l2r_options):
    """The three synthetic tasks learned one by one (a LoRA and a head delta each), then the routers fitted on a
    memory of 12 images per task: (l2r, memory, training sets, indices read while training, router losses)."""
    model = tiny_vit(num_classes=2).eval()
    l2r, memory = L2R(model, hidden=32, **l2r_options), ReplayMemory(per_task=12, seed=0)
    train = [Recorded(*task_data(t, 48, seed=0)) for t in range(TASKS)]
    for t, data in enumerate(train):
        l2r.add_task(f'task{t}', PLAN, trainable=('head',))
        train_adapter(model, f'task{t}', data.x, data.y, epochs=12, lr=1e-2, seed=t)
        memory.add_task(t, range(len(data)))
    reads = [set(d.read) for d in train]
    losses = l2r.fit_router(*memory_samples(memory, train), epochs=60)
    return l2r, memory, train, reads, losses


@pytest.fixture(scope='module')
def sequence():
    return train_sequence()


def test_router_picks_the_right_adapter(sequence):
    l2r, _, _, _, losses = sequence
    tests = [task_data(t, 40, seed=1) for t in range(TASKS)]
    x = torch.cat([x for x, _ in tests])
    tasks = torch.arange(TASKS).repeat_interleave(40)
    assert losses[-1] < 0.2 * losses[0]
    assert l2r.routing_accuracy(x, tasks) >= 0.95
    w = l2r.weights(x)
    assert w.shape == (120, 3) and torch.allclose(w.sum(1), torch.ones(120))


def test_routed_accuracy_is_close_to_the_oracle_and_beats_uniform_mixing(sequence):
    l2r, *_ = sequence
    tests = [task_data(t, 40, seed=1) for t in range(TASKS)]
    x, y = torch.cat([x for x, _ in tests]), torch.cat([y for _, y in tests])
    names = [f'task{t}' for t in range(TASKS) for _ in range(40)]
    with torch.no_grad(), pv.tuner_context(adapter=names):
        oracle = (l2r.model(x).argmax(1) == y).float().mean().item()
    with torch.no_grad():
        routed = (l2r(x).argmax(1) == y).float().mean().item()
        uniform = (l2r(x, weights=torch.full((120, 3), 1 / 3)).argmax(1) == y).float().mean().item()
    assert oracle >= 0.9 and routed >= oracle - 0.03 and routed > uniform


def test_router_trains_on_the_memory_only(sequence):
    _, memory, train, reads, _ = sequence
    for t, data in enumerate(train):
        assert data.read - reads[t] == set(memory.tasks[t])  # after training: only the kept samples were read


def test_one_hot_weights_equal_the_adapter_alone(sequence):
    l2r, *_ = sequence
    x, _ = task_data(1, 6, seed=2)
    with torch.no_grad():
        routed = l2r(x, weights=torch.nn.functional.one_hot(torch.ones(6, dtype=torch.long), 3).float())
        pv.set_adapter(l2r.model, 'task1')
        alone = l2r.model(x)
    assert torch.allclose(routed, alone, atol=1e-5)


def test_isolated_training_leaves_older_adapters_untouched():
    model = tiny_vit(num_classes=2).eval()
    l2r = L2R(model)
    x, y = task_data(0, 16, seed=0)
    l2r.add_task('a', PLAN, trainable=('head',))
    train_adapter(model, 'a', x, y, epochs=2)
    before = [p.detach().clone() for p in pv.tuners.adapter_parameters(model, 'a')]
    l2r.add_task('b', PLAN, trainable=('head',))
    train_adapter(model, 'b', x, y, epochs=2)
    assert all(torch.equal(p, q) for p, q in zip(before, pv.tuners.adapter_parameters(model, 'a')))
    with pytest.raises(RuntimeError, match='call fit_router'):
        l2r.weights(x)
    with pytest.raises(ValueError, match='must index the 2 adapters'):
        l2r.fit_router(x[:4], torch.tensor([0, 1, 2, 0]))
