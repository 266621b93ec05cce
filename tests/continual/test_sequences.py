"""Task sequences: seeded, recorded class orders cut into disjoint tasks; stages of any mmengine dataset through
its own pipeline; the digits domains as a domain sequence; the protocols' logit masks."""
import numpy as np
import pytest
import torch

from petl_vision.continual import (Protocol, TaskSequence, class_incremental, dataset_labels, digits_domain_sequence,
                                   task_indices, task_subset)
from petl_vision.datasets import DigitsMultiTask, PackInputs


def test_split_cifar100_into_ten_tasks_seeded_and_recorded(tmp_path):
    seq = class_incremental(100, 10, seed=1993)
    assert len(seq) == 10 and all(len(t) == 10 for t in seq.tasks)
    assert sorted(c for t in seq.tasks for c in t) == list(range(100))
    assert list(seq.class_order) == list(np.random.default_rng(1993).permutation(100))
    assert class_incremental(100, 10, seed=1993) == seq and class_incremental(100, 10, seed=0) != seq
    assert seq.mapped_classes(3) == list(range(30, 40))  # task t owns labels [t k, (t + 1) k) of the classifier
    assert seq.task_of(seq.class_order[57]) == 5
    assert TaskSequence.load(seq.save(tmp_path / 'sequence.json')) == seq
    assert class_incremental(6, 3).tasks == ((0, 1), (2, 3), (4, 5))
    assert class_incremental(4, 2, class_order=[3, 1, 0, 2]).tasks == ((3, 1), (0, 2))


def test_bad_splits_are_refused():
    with pytest.raises(ValueError, match='do not split into 7 equal tasks'):
        class_incremental(100, 7)
    with pytest.raises(ValueError, match='permutation of 0..3'):
        class_incremental(4, 2, class_order=[0, 1, 1, 2])
    with pytest.raises(ValueError, match='not both'):
        class_incremental(4, 2, seed=0, class_order=[0, 1, 2, 3])


def test_task_subset_of_a_dataset_through_its_pipeline():
    ds = DigitsMultiTask(task='digit', domain='upright', split='test', pipeline=[PackInputs()])
    seq = class_incremental(10, 5, seed=0)
    labels = dataset_labels(ds)
    assert len(labels) == 50
    stage = task_subset(ds, seq, 2)
    assert len(stage) == 10 and {stage[i]['data_samples'] for i in range(len(stage))} == {4, 5}
    assert {int(labels[i]) for i in stage.indices} == set(seq.tasks[2]) and stage[0]['task'] == 'task2'
    assert stage[0]['inputs'].shape == (3, 32, 32)
    seen = task_indices(labels, seq, 2, seen=True)
    assert len(seen) == 30 and set(labels[seen]) == {c for t in seq.tasks[:3] for c in t}


def test_digits_domain_sequence():
    seq, sets = digits_domain_sequence(('upright', 'inverted'), task='parity', split='test')
    assert seq.kind == 'domain' and seq.names == ('upright', 'inverted') and seq.num_classes == 2
    assert [len(s) for s in sets] == [50, 50] and [s.domains for s in sets] == [('upright',), ('inverted',)]
    a, b = sets[0].get_data_info(0), sets[1].get_data_info(0)
    assert (a['domain'], b['domain']) == ('upright', 'inverted')
    assert a['img'][:, 0].float().mean() < 128 < b['img'][:, 0].float().mean()  # dark background, then inverted
    assert not {d['source_idx'] for d in sets[0].data_list} & {d['source_idx'] for d in sets[1].data_list}


def test_protocol_masks():
    seq = class_incremental(6, 3)  # tasks (0, 1), (2, 3), (4, 5)
    logits = torch.zeros(2, 6)
    cls = Protocol('class').mask_logits(logits, seq, stage=1)
    assert torch.isinf(cls).tolist() == [[False] * 4 + [True] * 2] * 2  # later classes ruled out
    til = Protocol('task').mask_logits(logits, seq, stage=2, task_ids=torch.tensor([0, 2]))
    assert (~torch.isinf(til)).tolist() == [[True, True, False, False, False, False],
                                            [False, False, False, False, True, True]]
    assert Protocol('task').task_given and not Protocol('class').task_given
    assert torch.equal(Protocol('domain').mask_logits(logits, seq, 0), logits)
    with pytest.raises(ValueError, match='pass task_ids'):
        Protocol('task').mask_logits(logits, seq, 1)
    with pytest.raises(ValueError, match='a task not yet learned'):
        Protocol('task').mask_logits(logits, seq, 0, task_ids=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='protocol must be one of'):
        Protocol('online')
