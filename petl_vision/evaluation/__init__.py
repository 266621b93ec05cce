"""Metrics registered in petl_vision's METRICS registry."""
from petl_vision.evaluation.classification import Accuracy, MultiTaskAccuracy, topk_accuracy, vtab_means
from petl_vision.evaluation.dense import MultiTaskDenseMetric, delta_m, load_single_task_baselines

__all__ = ['Accuracy', 'MultiTaskAccuracy', 'topk_accuracy', 'vtab_means', 'MultiTaskDenseMetric', 'delta_m',
           'load_single_task_baselines']
