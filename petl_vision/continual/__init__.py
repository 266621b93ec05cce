"""Continual learning on one frozen backbone: task sequences and protocols, a replay memory, the continual
metrics (named by formula), L2R's routed composition of per-task adapters (per model, block or layer; output or
merge mode), Arrow's zero-shot routing of LoRA experts, the baselines (sequential fine-tuning, nearest task
prototype, SimpleCIL) and one harness that runs them all on a sequence (:class:`ContinualRun`, resumable between
stages). Built on the core's named adapters and soft routing; the core does not import this package."""
from petl_vision.continual.arrow import Arrow, arrow_prototype, arrow_weights, lora_experts
from petl_vision.continual.baselines import SimpleCIL, TaskPrototypes
from petl_vision.continual.harness import METHODS, ContinualRun, Recipe, Stage, train_stage
from petl_vision.continual.l2r import L2R, Router, fit_router, memory_samples, pooled_features, train_adapter
from petl_vision.continual.memory import ReplayMemory, reservoir_sample
from petl_vision.continual.merge import MergedWeights
from petl_vision.continual.metrics import (average_incremental_accuracy, backward_transfer, consecutive_forgetting,
                                           final_average_accuracy, forward_transfer, max_forgetting,
                                           plot_accuracy_matrix, stage_accuracies, summary)
from petl_vision.continual.sequences import (PROTOCOLS, Protocol, TaskSequence, TaskSubset, class_incremental,
                                             dataset_labels, digits_domain_sequence, domain_incremental, task_indices,
                                             task_subset)
from petl_vision.continual.sites import SiteWeights, routing_sites, site_inputs

__all__ = ['Arrow', 'arrow_prototype', 'arrow_weights', 'lora_experts', 'SimpleCIL', 'TaskPrototypes', 'METHODS',
           'ContinualRun', 'Recipe', 'Stage', 'train_stage', 'L2R', 'Router', 'fit_router', 'memory_samples',
           'pooled_features', 'train_adapter', 'ReplayMemory', 'reservoir_sample', 'MergedWeights',
           'average_incremental_accuracy', 'backward_transfer', 'consecutive_forgetting', 'final_average_accuracy',
           'forward_transfer', 'max_forgetting', 'plot_accuracy_matrix', 'stage_accuracies', 'summary', 'PROTOCOLS',
           'Protocol', 'TaskSequence', 'TaskSubset', 'class_incremental', 'dataset_labels', 'digits_domain_sequence',
           'domain_incremental', 'task_indices', 'task_subset', 'SiteWeights', 'routing_sites', 'site_inputs']
