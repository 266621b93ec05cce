"""Top-k accuracy with ties, the Accuracy metric as mmengine runs it, and the VTAB-1k means, on hand numbers."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope

from petl_vision.datasets import VTAB_TASKS
from petl_vision.evaluation import Accuracy, topk_accuracy, vtab_means

# 4 samples x 6 classes; (higher, tied) of the true class: (0, 0), (0, 1), (3, 2), (0, 5)
SCORES = torch.tensor([[0.10, 0.50, 0.20, 0.10, 0.05, 0.05],
                       [0.30, 0.30, 0.20, 0.10, 0.05, 0.05],
                       [0.30, 0.20, 0.20, 0.10, 0.10, 0.10],
                       [1 / 6] * 6])
LABELS = torch.tensor([1, 0, 5, 2])
# top-1 credit: 1, 1/2, 0, 1/6; top-5 credit: 1, 1, (5 - 3) / 3 = 2/3, 5/6
TOP1 = (1 + 1 / 2 + 0 + 1 / 6) / 4 * 100  # 41.67
TOP5 = (1 + 1 + 2 / 3 + 5 / 6) / 4 * 100  # 87.5


def test_topk_counts_ties_by_their_expectation():
    acc = topk_accuracy(SCORES, LABELS, topk=(1, 5))
    assert acc == pytest.approx({1: TOP1, 5: TOP5})
    assert topk_accuracy(SCORES, LABELS, topk=(2,))[2] == pytest.approx((1 + 1 + 0 + 2 / 6) / 4 * 100)


def test_topk_is_clipped_to_the_number_of_classes():
    scores = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    assert topk_accuracy(scores, torch.tensor([0, 0]), topk=(1, 5)) == {1: 50.0, 3: 100.0}


def test_accuracy_metric_reads_classifier_predictions():
    metric = Accuracy()
    predictions = [{'pred_score': s, 'pred_label': int(s.argmax()), 'gt_label': int(y)} for s, y in zip(SCORES, LABELS)]
    metric.process({}, predictions[:3])
    metric.process({}, predictions[3:])
    result = metric.evaluate(size=4)
    assert result.keys() == {'accuracy/top1', 'accuracy/top5'}
    assert result['accuracy/top1'] == pytest.approx(TOP1) and result['accuracy/top5'] == pytest.approx(TOP5)


def test_accuracy_builds_from_config_in_an_evaluator():
    with DefaultScope.overwrite_default_scope('petl_vision'):
        evaluator = Evaluator([dict(type='Accuracy', topk=(1,))])
    evaluator.process([{'pred_score': torch.tensor([0.9, 0.1]), 'gt_label': 1},
                       {'pred_score': torch.tensor([0.9, 0.1]), 'gt_label': 0}])
    assert evaluator.evaluate(2) == {'accuracy/top1': 50.0}


def test_vtab_means_report_both_conventions():
    results = {task: {'natural': 70.0, 'specialized': 0.0, 'structured': 50.0}[group]
               for task, (group, _) in VTAB_TASKS.items()}
    results.update(patch_camelyon=80.0, eurosat=84.0, resisc45=86.0, diabetic_retinopathy=90.0, kitti=58.0)
    means = vtab_means(results)
    assert means['natural'] == pytest.approx(70.0)
    assert means['specialized'] == pytest.approx(85.0)
    assert means['structured'] == pytest.approx(51.0)  # (7 * 50 + 58) / 8
    assert means['mean_19'] == pytest.approx((7 * 70 + 340 + 408) / 19)  # 65.16
    assert means['mean_of_groups'] == pytest.approx((70 + 85 + 51) / 3)  # 68.67


def test_vtab_means_name_missing_and_unknown_tasks():
    results = dict.fromkeys(VTAB_TASKS, 50.0)
    del results['dmlab']
    results['cifar100'] = 1.0
    with pytest.raises(KeyError, match=r"missing \['dmlab'\], unknown \['cifar100'\]"):
        vtab_means(results)
