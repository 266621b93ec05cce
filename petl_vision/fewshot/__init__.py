"""Cross-domain few-shot learning: prototype classifier, episodic evaluation, ProLAD and its baselines."""
from petl_vision.fewshot.evaluator import (AdaptFn, DomainResult, FewShotDomain, FewShotEvaluator, FewShotResults,
                                           confidence_interval95, embed, fetch_from_dataset,
                                           frozen_prototype_baseline)
from petl_vision.fewshot.prolad_losses import (SupportSimilarity, adaptive_coefficient, distillation_loss,
                                               mean_pairwise_cosine, prolad_coefficient, stage2_loss,
                                               support_similarity)
from petl_vision.fewshot.prototypes import cosine_logits, prototype_logits, prototype_loss, prototypes
from petl_vision.fewshot.adaptation import SupportSchedule, fit_support, predict_by_prototypes
from petl_vision.fewshot.baselines import TSA, LinearHead, TunerBaseline, attach_baseline
from petl_vision.fewshot.prolad import ProLAD, ProLADConfig, attach_prolad

__all__ = [
    'AdaptFn', 'DomainResult', 'FewShotDomain', 'FewShotEvaluator', 'FewShotResults', 'SupportSimilarity',
    'adaptive_coefficient', 'confidence_interval95', 'cosine_logits', 'distillation_loss', 'embed',
    'fetch_from_dataset', 'frozen_prototype_baseline', 'mean_pairwise_cosine', 'prolad_coefficient',
    'prototype_logits', 'prototype_loss', 'prototypes', 'stage2_loss', 'support_similarity',
    'SupportSchedule', 'fit_support', 'predict_by_prototypes', 'TSA', 'LinearHead', 'TunerBaseline',
    'attach_baseline', 'ProLAD', 'ProLADConfig', 'attach_prolad',
]
