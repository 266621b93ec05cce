"""PHA's two contrastive losses (Zhao, Fu & He, EMNLP 2023), in the form of the official trainer (Bumble666/PHA,
``third_party/trainers/t5_trainer.py``: ``_ins_ins_loss``, ``_pro_ins_loss``), temperature 0.1 in both.

Both read L2-normalised retriever embeddings ``e`` (B, D) and each sample's task index ``y`` (B,):

- :func:`instance_instance_loss` (L_ins-ins, supervised contrastive): for anchor i with positives P(i) = {j != i,
  y_j = y_i}, ``-1/|P(i)| sum_{j in P(i)} [s_ij - log sum_{k != i} exp s_ik]`` with ``s = e e^T / tau``, averaged
  over the anchors that have a positive (a batch without any gives 0).
- :func:`prototype_instance_loss` (L_pro-ins): logits ``l_t = <e, p_t> / tau`` over all prototypes (normalised);
  ``form='official'``: ``-(l_y - log sum_{t != y} exp l_t)``, the positive left out of the denominator, as the
  released code computes it; ``form='infonce'``: the standard ``-(l_y - log sum_t exp l_t)`` (cross-entropy).

The official code multiplies each loss by 0.1 inside the function; here the weights are the caller's
(``PHAClassifier``'s ``ins_weight`` / ``pro_weight``, 0.1 by default), so the total is the same.
"""
import torch
from torch.nn import functional as F

TEMPERATURE = 0.1
FORMS = ('official', 'infonce')


def instance_instance_loss(embeddings: torch.Tensor, tasks: torch.Tensor,
                           temperature: float = TEMPERATURE) -> torch.Tensor:
    """embeddings (B, D), tasks (B,) long -> scalar L_ins-ins (see the module docstring)."""
    e = F.normalize(embeddings, dim=-1)
    b = len(e)
    eye = torch.eye(b, dtype=torch.bool, device=e.device)
    s = (e @ e.t() / temperature).masked_fill(eye, float('-inf'))  # (B, B), self excluded
    log_prob = s - torch.logsumexp(s, dim=1, keepdim=True)  # (B, B)
    positives = (tasks[:, None] == tasks[None, :]) & ~eye  # (B, B)
    count = positives.sum(1)
    has = count > 0
    if not has.any():
        return embeddings.sum() * 0.0  # no anchor has a positive: nothing to pull together
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(1)[has] / count[has]
    return -per_anchor.mean()


def prototype_instance_loss(embeddings: torch.Tensor, tasks: torch.Tensor, prototypes: torch.Tensor,
                            temperature: float = TEMPERATURE, form: str = 'official') -> torch.Tensor:
    """embeddings (B, D), tasks (B,) long, prototypes (T, D) -> scalar L_pro-ins (see the module docstring)."""
    if form not in FORMS:
        raise ValueError(f'prototype_instance_loss form must be one of {FORMS}, got {form!r}')
    if form == 'official' and len(prototypes) < 2:
        raise ValueError("the official L_pro-ins leaves the positive out of the denominator, so it needs at least "
                         "two prototypes; with one task use form='infonce'")
    logits = F.normalize(embeddings, dim=-1) @ F.normalize(prototypes, dim=-1).t() / temperature  # (B, T)
    if form == 'infonce':
        return F.cross_entropy(logits, tasks)
    positive = logits.gather(1, tasks[:, None]).squeeze(1)  # (B,)
    others = logits.scatter(1, tasks[:, None], float('-inf'))  # (B, T), the positive removed
    return -(positive - torch.logsumexp(others, dim=1)).mean()


def nearest_prototype(embeddings: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """(B,) index of each embedding's nearest prototype by cosine similarity (PHA's retrieval)."""
    return (F.normalize(embeddings, dim=-1) @ F.normalize(prototypes, dim=-1).t()).argmax(1)
