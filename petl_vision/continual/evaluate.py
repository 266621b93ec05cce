"""Evaluation of a :class:`~petl_vision.continual.harness.ContinualRun` after stage ``t``: the accuracy on each
seen stage's test set under every method, and how often the routing methods pick the sample's own stage.

What each method predicts (class-incremental: over the classes of stages ``0..t``; the ``oracle`` and
``nearest_prototype`` pick one stage per sample and predict among that stage's classes):

- ``oracle``: the stage id given, the sample's own adapter (task-incremental: the upper bound);
- ``l2r``: the L2R routers' weights over the seen adapters;
- ``arrow``: Arrow's zero-shot routing of the seen LoRA adapters;
- ``uniform``: every seen adapter at weight ``1/N``;
- ``seq_ft``: the one adapter trained on every stage in turn;
- ``nearest_prototype``: the adapter of the stage whose mean frozen feature is nearest (cosine);
- ``simplecil``: the cosine to the class means of the frozen features (no adapter).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

import petl_vision as pv
from petl_vision.continual.arrow import Arrow
from petl_vision.continual.l2r import pooled_features

if TYPE_CHECKING:
    from petl_vision.continual.harness import ContinualRun

NEG = float('-inf')
SEQ_ADAPTER = 'seq_ft'


def class_mask(classes: Sequence[int], num_classes: int, device=None) -> torch.Tensor:
    """(C,) bool, True at ``classes``."""
    mask = torch.zeros(num_classes, dtype=torch.bool, device=device)
    mask[list(classes)] = True
    return mask


def _masked(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask`` (C,) or (B, C) of allowed classes; None: all."""
    return logits if mask is None else logits.masked_fill(~mask, NEG)


class StageEvaluator:
    """The predictions of every method after stage ``t``, batch by batch."""

    def __init__(self, run: ContinualRun, t: int) -> None:
        self.run, self.t, self.model = run, t, run.model
        self.names = list(run.l2r.adapters[:t + 1])
        device = run.device
        self.uniform = torch.full((1, len(self.names)), 1 / len(self.names), device=device)
        if run.protocol == 'class':
            self.stage_masks = torch.stack([class_mask(s.classes, run.num_classes, device) for s in run.stages[:t + 1]])
            self.seen = self.stage_masks.any(dim=0)
        else:
            self.stage_masks = self.seen = None
        self.arrow = Arrow(self.model, self.names, record=True, **run.arrow) if 'arrow' in run.methods else None

    def _stage_mask(self, stages: torch.Tensor) -> torch.Tensor | None:
        return None if self.stage_masks is None else self.stage_masks[stages]

    def _hard(self, x: torch.Tensor, stages: torch.Tensor) -> torch.Tensor:
        with pv.tuner_context(adapter=[self.names[int(k)] for k in stages]):
            return _masked(self.model(x), self._stage_mask(stages))

    @torch.no_grad()
    def batch(self, x: torch.Tensor, j: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Predicted labels (B,) per method on a batch of stage ``j``, and the routing hits (counts) per routed
        method (Arrow: the share of tokens routed to the own stage, times B)."""
        methods, own = self.run.methods, torch.full((len(x),), j, device=x.device)
        logits, hits = {}, {}
        if 'oracle' in methods:
            logits['oracle'] = self._hard(x, own)
        feats = pooled_features(self.model, x) if {'nearest_prototype', 'simplecil'} & set(methods) else None
        if 'l2r' in methods:
            w = self.run.l2r.weights(x)  # once: the routed pass and the routing hits both read them
            logits['l2r'] = _masked(self.run.l2r(x, weights=w), self.seen)
            hits['l2r'] = float((self.run.l2r.top_of(w) == own).sum())
        if 'arrow' in methods:
            logits['arrow'] = _masked(self.arrow(x), self.seen)
            hits['arrow'] = self.arrow.routing_accuracy(own) * len(x)
        if 'uniform' in methods:
            with pv.tuner_context(adapter_weights=self.uniform.expand(len(x), -1), adapters=self.names):
                logits['uniform'] = _masked(self.model(x), self.seen)
        if SEQ_ADAPTER in methods:
            with pv.tuner_context(adapter=SEQ_ADAPTER):
                logits[SEQ_ADAPTER] = _masked(self.model(x), self.seen)
        if 'nearest_prototype' in methods:
            chosen = self.run.prototypes.nearest(feats)
            logits['nearest_prototype'] = self._hard(x, chosen)
            hits['nearest_prototype'] = float((chosen == own).sum())
        if 'simplecil' in methods:
            logits['simplecil'] = _masked(self.run.simplecil.logits(feats), self.seen)
        return {m: v.argmax(dim=1) for m, v in logits.items()}, hits


def evaluate_stage(run: ContinualRun, t: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Accuracy per method on each seen stage ``0..t`` and the routing accuracy over all their test samples."""
    evaluator = StageEvaluator(run, t)
    acc = {m: [] for m in run.methods}
    hits = {m: 0.0 for m in run.routing}
    total = 0
    for j in range(t + 1):
        correct, n = {m: 0 for m in run.methods}, 0
        for x, y in run.loader(run.stages[j].test):
            x, y = x.to(run.device), y.to(run.device)
            preds, routed = evaluator.batch(x, j)
            for m, p in preds.items():
                correct[m] += int((p == y).sum())
            for m, h in routed.items():
                hits[m] += h
            n += len(y)
        for m in run.methods:
            acc[m].append(correct[m] / n)
        total += n
    return acc, {m: h / total for m, h in hits.items()}
