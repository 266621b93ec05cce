"""Dense multi-task metrics against hand-computed cases."""
import json
import math

import pytest
import torch

from petl_vision.evaluation.dense import (
    MultiTaskDenseMetric,
    confusion_matrix,
    delta_m,
    depth_rmse,
    depth_stats,
    iou_from_confusion,
    load_single_task_baselines,
    normal_angle_errors,
    normal_scores,
    normal_stats,
    saliency_scores,
    saliency_stats,
)
from petl_vision.registry import METRICS

SEG_GT = torch.tensor([[0, 0, 1], [1, 255, 2]])
SEG_PRED = torch.tensor([[0, 1, 1], [1, 0, 0]])


def test_miou_with_ignore_index():
    conf = confusion_matrix(SEG_PRED, SEG_GT, num_classes=4)
    assert conf.sum() == 5  # the 255 pixel is not counted
    assert conf[0].tolist() == [1, 1, 0, 0] and conf[1].tolist() == [0, 2, 0, 0] and conf[2].tolist() == [1, 0, 0, 0]
    miou, iou = iou_from_confusion(conf)
    # IoU: class 0 = 1 / (2 + 2 - 1), class 1 = 2 / (2 + 3 - 2), class 2 = 0 / 1; class 3 absent, left out.
    assert torch.allclose(iou[:3], torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64))
    assert math.isnan(iou[3])
    assert miou == pytest.approx(100 / 3)
    scores = torch.nn.functional.one_hot(SEG_PRED, 4).permute(2, 0, 1).float()  # (C, H, W)
    assert torch.equal(confusion_matrix(scores, SEG_GT, num_classes=4), conf)


def test_saliency_max_f_and_miou():
    gt = torch.tensor([[1, 1, 0, 0, 255]])
    prob = torch.tensor([[0.9, 0.4, 0.6, 0.12, 0.99]])
    stats = saliency_stats(prob, gt)
    # Best F (beta^2 = 0.3) at thresholds in (0.6, 0.9]: P = 1, R = 1/2 -> 1.3 * 0.5 / (0.3 + 0.5) = 0.8125.
    # Best IoU at thresholds in (0.12, 0.4]: predicted {0.9, 0.4, 0.6}, IoU = 2 / 3.
    scores = saliency_scores([stats])
    assert scores['maxF'] == pytest.approx(81.25)
    assert scores['mIoU'] == pytest.approx(200 / 3)
    # A second image with empty label and empty prediction: IoU 1 everywhere, no change to the set-level counts.
    empty = saliency_stats(torch.zeros(1, 2, 2), torch.zeros(2, 2, dtype=torch.long))
    both = saliency_scores([stats, empty])
    assert both['maxF'] == pytest.approx(81.25)
    assert both['mIoU'] == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_normal_angle_error():
    pred = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).reshape(3, 1, 3)
    gt = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).reshape(3, 1, 3)
    # pixel 0 orthogonal (90 degrees), pixel 1 parallel after normalising (0), pixel 2 unlabelled (zero vector).
    assert torch.allclose(normal_angle_errors(pred, gt), torch.tensor([90.0, 0.0], dtype=torch.float64))
    scores = normal_scores([normal_stats(pred, gt)])
    assert scores['mean'] == pytest.approx(45.0)
    assert scores['rmse'] == pytest.approx(math.sqrt(90.0 ** 2 / 2))
    assert scores['11.25'] == pytest.approx(50.0) and scores['30'] == pytest.approx(50.0)
    ignored = torch.full((3, 1, 1), 255.0)  # MTLoRA-style ignore value
    assert normal_angle_errors(torch.ones(3, 1, 1), ignored).numel() == 0


def test_depth_rmse_over_valid_pixels_of_the_set():
    a = depth_stats(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[1.0, 4.0, 0.0, 2.0]]))
    assert depth_rmse([a]) == pytest.approx(math.sqrt(8 / 3))  # errors 0, -2, 2; the 0 label is skipped
    b = depth_stats(torch.zeros(1, 1, 1), torch.full((1, 1, 1), 3.0))
    assert depth_rmse([a, b]) == pytest.approx(math.sqrt(17 / 4))


def test_delta_m_sign_conventions():
    single = {'semseg/mIoU': 60.0, 'normals/mean': 20.0}
    assert delta_m({'semseg/mIoU': 66.0, 'normals/mean': 18.0}, single) == pytest.approx(10.0)  # both better
    assert delta_m({'semseg/mIoU': 66.0, 'normals/mean': 22.0}, single) == pytest.approx(0.0)  # +10 and -10
    assert delta_m({'semseg/mIoU': 54.0, 'normals/mean': 20.0}, single) == pytest.approx(-5.0)
    assert delta_m({'a': 2.0}, {'a': 1.0}, lower_is_better={'a'}) == pytest.approx(-100.0)
    with pytest.raises(KeyError, match='normals/mean'):
        delta_m({'semseg/mIoU': 66.0}, single)


def test_load_single_task_baselines_json_and_yaml(tmp_path):
    (tmp_path / 'st.json').write_text(json.dumps({'semseg/mIoU': 67.2, 'normals': {'mean': 17.0}}))
    (tmp_path / 'st.yaml').write_text('semseg:\n  mIoU: 67.2\nnormals/mean: 17\n')
    expected = {'semseg/mIoU': 67.2, 'normals/mean': 17.0}
    assert load_single_task_baselines(str(tmp_path / 'st.json')) == expected
    assert load_single_task_baselines(str(tmp_path / 'st.yaml')) == expected
    (tmp_path / 'bad.yaml').write_text('semseg/mIoU: high\n')
    with pytest.raises(TypeError, match='must be a number'):
        load_single_task_baselines(str(tmp_path / 'bad.yaml'))


def test_multi_task_metric_end_to_end(tmp_path):
    (tmp_path / 'st.json').write_text(json.dumps({'semseg/mIoU': 100 / 3 / 1.1, 'depth/rmse': 2.0}))
    metric = METRICS.build({'type': 'MultiTaskDenseMetric', '_scope_': 'petl_vision', 'tasks': ['semseg', 'depth'],
                            'num_classes': {'semseg': 4}, 'single_task_baselines': str(tmp_path / 'st.json')})
    sample = {'pred': {'semseg': SEG_PRED, 'depth': torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])},
              'gt': {'semseg': SEG_GT, 'depth': torch.tensor([[[1.0, 4.0, 0.0, 2.0]]])}}
    metric.process(None, [sample])
    out = metric.evaluate(1)
    assert out['dense/semseg/mIoU'] == pytest.approx(100 / 3)
    assert out['dense/depth/rmse'] == pytest.approx(math.sqrt(8 / 3))
    # semseg 10 % better; depth rmse sqrt(8/3) vs 2 is (2 - 1.633) / 2 = 18.35 % better.
    expected = (10.0 + 100 * (2.0 - math.sqrt(8 / 3)) / 2.0) / 2
    assert out['dense/delta_m'] == pytest.approx(expected)


def test_metric_config_errors(tmp_path):
    with pytest.raises(ValueError, match='num_classes'):
        MultiTaskDenseMetric(tasks=['semseg'])
    with pytest.raises(ValueError, match='unknown dense tasks'):
        MultiTaskDenseMetric(tasks=['edge'])
    (tmp_path / 'st.json').write_text(json.dumps({'semseg/mIoU': 60.0}))
    with pytest.raises(KeyError, match='sal/mIoU'):
        MultiTaskDenseMetric(tasks=['semseg', 'sal'], num_classes={'semseg': 21},
                             single_task_baselines=str(tmp_path / 'st.json'))
    with pytest.raises(ValueError, match='resize predictions'):
        confusion_matrix(torch.zeros(2, 2, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long), 2)
