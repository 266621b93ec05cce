"""``PHAClassifier``: the multi-task classifier with PHA (prototype-based hyper-adapters, ``tuners/pha.py``).

One PHA adapter (a hypernetwork shared by every task and block) on the frozen backbone, one head per task, and the
instance-dense retriever ``e = MLP(mean-pool(hidden states))``, ``MLP = Linear(C -> 128) ReLU Linear(128 -> 64)``.
The loss is PHA's::

    L = CE_ls(0.1) + ins_weight * L_ins-ins(e) + pro_weight * L_pro-ins(e, prototypes)      (weights 0.1, 0.1)

Where the retriever's hidden states come from (``retriever_features``):

- ``'prepass'`` (default): the frozen backbone's output tokens, from a second forward without adapters and
  without gradient (one extra frozen forward per step);
- an int ``k``: the output tokens of block ``k`` in the same pass (PHA then belongs only on the blocks after
  ``k`` when ``task_source='retrieved'``), as the official encoder / decoder split does (the decoder's generated
  adapters read the encoder's states).

Which prototype generates a sample's adapters (``task_source``): ``'given'`` (the sample's task; the official code
does this in training *and* at inference) or ``'retrieved'`` (the prototype nearest to the sample's retriever
embedding, at inference; training always uses the given task, whose prototype the losses pull to its instances).
Predictions carry ``retrieved_task`` either way, so retrieval accuracy can be read off a validation pass.
"""
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..registry import MODELS
from ..tuners import BASE, describe, tuned_ops, tuner_context
from ..tuners.patterns import match_modules
from ..tuners.pha import PHA, PHAHyperNetwork, PrototypeSlot
from ..tuners.pha_losses import FORMS, instance_instance_loss, nearest_prototype, prototype_instance_loss
from .config_check import check_init_keys
from .multitask_classifier import MultiTaskClassifier

TASK_SOURCES = ('given', 'retrieved')


def make_retriever(in_features: int, hidden: int = 128, out_features: int = 64) -> nn.Sequential:
    """The instance-dense retriever MLP (106,688 parameters at in_features = 768)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


@MODELS.register_module()
@check_init_keys
class PHAClassifier(MultiTaskClassifier):
    """Args (besides :class:`MultiTaskClassifier`'s ``backbone``, ``tasks``, ``label_smoothing``):
        plan: the PHA plan (``tasks`` filled in from ``tasks``); default one PHA entry on every block's mlp.
        retriever_features: ``'prepass'`` or a block index (see the module docstring).
        task_source: ``'given'`` or ``'retrieved'``.
        ins_weight / pro_weight: weights of L_ins-ins and L_pro-ins; pro_form: ``'official'`` or ``'infonce'``.
        temperature: of both contrastive losses (official: 0.1).
    """

    def __init__(self, backbone: dict[str, Any], tasks: Mapping[str, int], plan: list[dict] | None = None,
                 retriever_features: str | int = 'prepass', task_source: str = 'given', ins_weight: float = 0.1,
                 pro_weight: float = 0.1, pro_form: str = 'official', temperature: float = 0.1,
                 label_smoothing: float = 0.1, data_preprocessor: dict | None = None, init_cfg=None):
        _check_choices(retriever_features, task_source, pro_form, len(tasks))
        plan = [{**e, 'tasks': e.get('tasks') or list(tasks)} if e.get('type') == 'PHA' else e
                for e in (plan or [{'type': 'PHA'}])]
        super().__init__(backbone, tasks, plan=plan, adapters='shared', label_smoothing=label_smoothing,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._source = [_pha_source(self.backbone)]  # a list: the module is the backbone's, not registered twice
        self.retriever_features, self.task_source = retriever_features, task_source
        self.ins_weight, self.pro_weight, self.pro_form, self.temperature = ins_weight, pro_weight, pro_form, \
            temperature
        self.retriever = make_retriever(self.backbone.num_features, out_features=self.source.prototypes.embedding_dim)
        self._block = None if retriever_features == 'prepass' else _block(self.backbone, retriever_features)

    @property
    def source(self) -> PHAHyperNetwork:
        return self._source[0]

    @property
    def task_list(self) -> list[str]:
        return list(self.source.tasks)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, ..., C) channels last -> retriever embeddings (B, 64) of their mean over positions."""
        return self.retriever(tokens.reshape(len(tokens), -1, tokens.shape[-1]).mean(1))

    def _prepass(self, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), tuner_context(adapter=[BASE] * len(inputs)):
            return self.backbone.forward_features(inputs)

    def run(self, inputs: torch.Tensor, task: Sequence[str], source: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features (B, num_features) and retriever embeddings (B, 64); ``source`` picks the prototypes."""
        if self._block is None:
            e = self.embed(self._prepass(inputs))
            if source == 'retrieved':
                task = [self.task_list[i] for i in nearest_prototype(e, self.source.prototypes.weight).tolist()]
            with tuner_context(task=list(task)):
                return self.backbone(inputs), e
        slot, found = PrototypeSlot(f'block {self.retriever_features}'), []

        def hook(module, args, output):
            found.append(self.embed(output))
            if source == 'retrieved':
                slot.value = self.source.prototypes.weight[nearest_prototype(found[0], self.source.prototypes.weight)]

        handle = self._block.register_forward_hook(hook)
        try:
            ctx = {'task': list(task)} if source == 'given' else {'prototype': slot}
            with tuner_context(**ctx):
                feats = self.backbone(inputs)
        finally:
            handle.remove()
        return feats, found[0]

    def forward(self, inputs: torch.Tensor, data_samples: torch.Tensor | None = None, mode: str = 'tensor',
                task: Sequence[str] | None = None):
        if mode not in ('loss', 'predict', 'tensor'):
            raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}')
        task = self._tasks_of(task, inputs.shape[0])
        feats, e = self.run(inputs, task, 'given' if mode == 'loss' else self.task_source)
        groups, logits = self.task_logits(feats, task)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return {**self._losses(logits, groups, data_samples, inputs.shape[0]), **self.contrastive(e, task)}
        out = self._predictions(logits, groups, data_samples, inputs.shape[0])
        retrieved = nearest_prototype(e, self.source.prototypes.weight).tolist()
        for row, r in zip(out, retrieved):
            row['retrieved_task'] = self.task_list[r]
        return out

    def contrastive(self, e: torch.Tensor, task: Sequence[str]) -> dict[str, torch.Tensor]:
        """The two PHA losses, weighted (mmengine sums every key holding 'loss')."""
        y = torch.tensor(self.source.task_indices(task), device=e.device)
        protos = self.source.prototypes.weight
        return {'loss_ins_ins': self.ins_weight * instance_instance_loss(e, y, self.temperature),
                'loss_pro_ins': self.pro_weight * prototype_instance_loss(e, y, protos, self.temperature,
                                                                          self.pro_form)}

    def parameter_counts(self) -> dict[str, Any]:
        """The parent's table, plus the hypernetwork, the prototypes and the retriever reported apart."""
        counts = super().parameter_counts()
        return {**counts, 'hypernetwork': self.source.hypernetwork_parameters(),
                'prototypes': self.source.prototypes.weight.numel(),
                'retriever': sum(p.numel() for p in self.retriever.parameters())}


def _check_choices(retriever_features, task_source: str, pro_form: str, n_tasks: int) -> None:
    if retriever_features != 'prepass' and (isinstance(retriever_features, bool)
                                            or not isinstance(retriever_features, int)):
        raise ValueError(f"retriever_features must be 'prepass' or a block index, got {retriever_features!r}")
    if task_source not in TASK_SOURCES:
        raise ValueError(f'task_source must be one of {TASK_SOURCES}, got {task_source!r}')
    if pro_form not in FORMS:
        raise ValueError(f'pro_form must be one of {FORMS}, got {pro_form!r}')
    if pro_form == 'official' and n_tasks < 2:
        raise ValueError("pro_form='official' needs at least two tasks (the positive is left out of the "
                         "denominator); use pro_form='infonce' for one task")


def _pha_source(backbone: nn.Module) -> PHAHyperNetwork:
    sources = [t.source for op in tuned_ops(backbone) for _, _, t in op.all_tuners() if isinstance(t, PHA)]
    if not sources or any(s is not sources[0] for s in sources):
        raise ValueError('PHAClassifier needs a plan whose PHA entries share one hypernetwork (one PHA entry, or '
                         f'entries with the same name); found {len({id(s) for s in sources})}')
    return sources[0]


def _block(backbone: nn.Module, index: int) -> nn.Module:
    blocks = match_modules(backbone, [describe(backbone).blocks], 'the backbone blocks')
    if not -len(blocks) <= index < len(blocks):
        raise ValueError(f'retriever_features={index} is not a block index; the backbone has {len(blocks)} blocks')
    return blocks[index][1]
