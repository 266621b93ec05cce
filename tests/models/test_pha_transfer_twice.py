"""PHAClassifier.transfer_parameters called for one new task, then another: the second task's prototype gets its
gradient (the first call's row mask does not stay on the table)."""
import torch

from tests.models.test_pha_transfer import images, model


def _prototype_grad(m, x, task):
    m.zero_grad()
    losses = m(x, torch.tensor([0, 1, 0, 1, 0, 1]), mode='loss', task=task)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return m.source.prototypes.weight.grad


def test_transfer_to_a_second_new_task_trains_its_own_prototype():
    m, x = model(), images()
    m.add_task('loops', 2, x)
    m.add_task('odd_loops', 2, x)
    m.train()
    m.transfer_parameters('loops')
    grad = _prototype_grad(m, x, 'loops')
    assert grad[3].abs().sum() > 0 and grad[[0, 1, 2, 4]].abs().sum() == 0
    m.transfer_parameters('odd_loops')
    grad = _prototype_grad(m, x, 'odd_loops')
    assert grad[4].abs().sum() > 0 and grad[:4].abs().sum() == 0
