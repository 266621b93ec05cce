"""The continual harness: SimpleCIL and the nearest task prototype on hand-checkable features, sequential fine-tuning
as "train stage 2 from the stage-1 adapter", isolated per-task adapters (the oracle forgets nothing), and save /
restore of a run's state."""
import math

import numpy as np
import pytest
import torch

import petl_vision as pv
from petl_vision.continual.baselines import SimpleCIL, TaskPrototypes
from petl_vision.continual.harness import SEQ_ADAPTER, ContinualRun, Recipe, Stage, train_stage
from petl_vision.continual.memory import ReplayMemory
from tests.conftest import tiny_vit

PLAN = [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 4}, {'type': 'LoRA', 'targets': 'head', 'rank': 2}]


def test_simplecil_means_and_cosine_logits_by_hand():
    cil = SimpleCIL(num_classes=3, dim=2)
    cil.add(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([0, 0]))
    cil.add(torch.tensor([[0.0, 2.0]]), torch.tensor([1]))
    assert torch.equal(cil.means[:2], torch.tensor([[2.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    logits = cil.logits(torch.tensor([[1.0, 1.0], [2.0, -1.0]]))
    assert logits[0, :2].tolist() == pytest.approx([1 / math.sqrt(2)] * 2)
    assert logits[1, :2].tolist() == pytest.approx([2 / math.sqrt(5), -1 / math.sqrt(5)])
    assert torch.isinf(logits[:, 2]).all()  # class 2 has no image yet


def test_simplecil_is_perfect_on_separable_features():
    g = torch.Generator().manual_seed(0)
    directions = torch.eye(8)[:5] * 4  # 5 classes, orthogonal means
    labels = torch.arange(5).repeat_interleave(20)
    feats = directions[labels] + 0.3 * torch.randn(100, 8, generator=g)
    cil = SimpleCIL(num_classes=5, dim=8)
    for t in range(5):  # classes arrive one task at a time
        cil.add(feats[labels == t], labels[labels == t])
    test_labels = torch.arange(5).repeat_interleave(10)
    test = directions[test_labels] + 0.3 * torch.randn(50, 8, generator=g)
    assert (cil.logits(test).argmax(1) == test_labels).float().mean() == 1.0


def test_nearest_prototype_picks_the_right_task():
    g = torch.Generator().manual_seed(1)
    protos = TaskPrototypes()
    offsets = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]])
    for t in range(3):
        protos.start_task()
        for _ in range(2):  # two batches: the mean is exact whatever the batching
            protos.add(offsets[t] + 0.5 * torch.randn(16, 3, generator=g))
    assert protos.prototypes.shape == (3, 3)
    assert torch.allclose(protos.prototypes, offsets.double(), atol=0.3)
    tasks = torch.arange(3).repeat_interleave(10)
    assert torch.equal(protos.nearest(offsets[tasks] + 0.5 * torch.randn(30, 3, generator=g)), tasks)


def synthetic_stage(t: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage t owns labels 2t, 2t+1: tinted in channel t, label 2t+1 when the top half is bright."""
    g = torch.Generator().manual_seed(seed * 10 + t)
    x = torch.randn(n, 3, 32, 32, generator=g) * 0.5
    x[:, t] += 1.5
    y = torch.randint(0, 2, (n,), generator=g)
    x[y == 1, :, :16] += 1.0
    return x, y + 2 * t


def make_run(methods=('oracle', 'seq_ft', 'nearest_prototype', 'simplecil', 'l2r', 'uniform', 'arrow'),
             engine='loop'):
    stages = []
    for t in range(3):
        train, test = synthetic_stage(t, 32, 0), synthetic_stage(t, 16, 1)
        stages.append(Stage(f'task{t}', list(zip(*train)), list(zip(*test)), (2 * t, 2 * t + 1)))
    model = tiny_vit(num_classes=6)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    return ContinualRun(model, stages, PLAN, num_classes=6, protocol='class', methods=methods,
                        recipe=Recipe(epochs=3, lr=1e-2, batch_size=16, engine=engine),
                        memory=ReplayMemory(per_task=8, seed=0), router=dict(hidden=16, epochs=20),
                        progress=lambda s: None)


@pytest.fixture(scope='module')
def finished():
    run = make_run()
    run.run()
    return run


def test_every_method_fills_the_lower_triangle_and_the_oracle_forgets_nothing(finished):
    R = finished.R
    for m, a in R.items():
        assert not np.isnan(np.tril(a)).any() and np.isnan(a[0, 1]), m
        assert (np.tril(a) >= 0).all() and (np.tril(a) <= 1).all()
    assert R['oracle'][2, 0] == R['oracle'][1, 0] == R['oracle'][0, 0]  # frozen once trained, task id given
    # one adapter after stage 1: oracle, L2R, Arrow, uniform and the nearest prototype are that adapter alone
    assert len({float(R[m][0, 0]) for m in ('oracle', 'l2r', 'arrow', 'uniform', 'nearest_prototype')}) == 1
    assert finished.routing['nearest_prototype'][0] == 1.0 and finished.routing['l2r'][0] == 1.0
    # the stage tints make the frozen features separable: the prototype picks the own stage
    assert finished.routing['nearest_prototype'][2] >= 0.9
    result = finished.result()
    assert result['metrics']['oracle']['max_forgetting'] == 0.0 and result['completed'] == 3


def test_a_stage_adapter_trains_its_classes_only(finished):
    (lora,) = [t for a, _, t in finished.model.head.all_tuners() if a == 'task1']
    rows = lora.delta_weight().abs().sum(dim=1)  # the head update per class
    assert (rows[[2, 3]] > 0).all() and (rows[[0, 1, 4, 5]] == 0).all()  # other classes' logits were masked


def test_sequential_finetuning_is_stage_two_from_the_stage_one_adapter(tmp_path):
    run = make_run(methods=('seq_ft',))
    run.run_stage(0)
    after_one = tmp_path / 'seq.safetensors'
    pv.save_tuners(run.model, after_one, adapter=SEQ_ADAPTER)
    run.run_stage(1)
    model = tiny_vit(num_classes=6).requires_grad_(False)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    pv.load_tuners(model, after_one, adapter='again')
    train_stage(model, 'again', run.stages[1].train, run.recipe, run.stage_seed(1), run.keep(1))
    seq, again = pv.tuners.adapter_parameters(run.model, SEQ_ADAPTER), pv.tuners.adapter_parameters(model, 'again')
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(seq, again))
    assert not all(torch.equal(p, q) for p, q in zip(seq, pv.tuners.adapter_parameters(run.model, 'task1')))


def test_save_and_restore_continue_exactly(tmp_path, finished):
    run = make_run()
    run.run(stop_after=2, save_to=tmp_path / 'state')
    resumed = make_run()
    resumed.restore(tmp_path / 'state')
    assert resumed.completed == 2 and resumed.l2r.adapters == ['task0', 'task1']
    resumed.run()
    for m in finished.R:
        np.testing.assert_array_equal(resumed.R[m], finished.R[m])
    assert resumed.routing == finished.routing
    with pytest.raises(RuntimeError, match='fresh ContinualRun'):
        resumed.restore(tmp_path / 'state')


def test_bad_runs_are_refused():
    with pytest.raises(ValueError, match='unknown methods'):
        make_run(methods=('oracle', 'ewc'))
    run = make_run(methods=('oracle',))
    with pytest.raises(ValueError, match='stages run in order'):
        run.run_stage(1)


def test_the_memory_given_is_the_one_filled(finished):
    # an empty ReplayMemory has len 0: the run once took it for "no memory" and used a default of 20 per task
    assert finished.memory.per_task == 8 and [len(v) for v in finished.memory.tasks.values()] == [8, 8, 8]


def test_mmengine_runner_trains_the_same_adapter_as_the_loop():
    runs = {engine: make_run(methods=('oracle',), engine=engine) for engine in ('mmengine', 'loop')}
    for run in runs.values():
        run.run_stage(0)
    by_runner, by_loop = (pv.tuners.adapter_parameters(r.model, 'task0') for r in runs.values())
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(by_runner, by_loop))
    assert runs['mmengine'].R['oracle'][0, 0] == runs['loop'].R['oracle'][0, 0]
    with pytest.raises(ValueError, match='recipe.engine must be one of'):
        Recipe(engine='lightning')
