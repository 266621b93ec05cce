"""``PHAClassifier``: the multi-task classifier with PHA (prototype-based hyper-adapters, ``tuners/pha.py``).

One PHA adapter (a hypernetwork shared by every task and block) on the frozen backbone, one head per task, and the
instance-dense retriever ``e = MLP(mean-pool(hidden states))``, ``MLP = Linear(C -> 128) ReLU Linear(128 -> 64)``.
The loss is PHA's::

    L = CE_ls(0.1) + ins_weight * L_ins-ins(e) + pro_weight * L_pro-ins(e, prototypes)      (weights 0.1, 0.1)

Where the retriever's hidden states come from (``retriever_features``):

- ``'prepass'`` (default): the frozen backbone's output tokens, from a second forward without adapters and
  without gradient (one extra frozen forward per step); with ``prepass_block=k`` the pre-pass stops after block k
  (timm's ``forward_intermediates(stop_early=True)``, patch tokens), costing (k + 1) / L of a forward;
- an int ``k``: the output tokens of block ``k`` in the same pass (PHA then belongs only on the blocks after
  ``k`` when ``task_source='retrieved'``), as the official encoder / decoder split does (the decoder's generated
  adapters read the encoder's states).

Which prototype generates a sample's adapters (``task_source``): ``'given'`` (the sample's task; the official code
does this in training *and* at inference) or ``'retrieved'`` (the prototype nearest to the sample's retriever
embedding, at inference; training always uses the given task, whose prototype the losses pull to its instances).
Predictions carry ``retrieved_task`` either way; :class:`PHARetrievalAccuracy` (a metric beside
``MultiTaskAccuracy``) reports how often it is the sample's own task, per task and over all samples.

Few-shot transfer (:meth:`PHAClassifier.add_task`, :meth:`PHAClassifier.transfer_parameters`): a new task's
prototype starts as the learned prototype nearest (by the retriever) to the mean embedding of its few samples, and
only that prototype and the new head train. :class:`TaskContextClassifier` runs the task-conditioned baselines
(Hyperformer++, Polyhistor-Lite: ``tuners/hyper_adapter.py``), whose tuners take one task per call, on mixed batches.
"""
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from torch import nn
from torch.nn import functional as F

from ..registry import METRICS, MODELS
from ..tuners import BASE, TUNERS, describe, tuned_ops, tuner_context
from ..tuners.layers import TaskConditioned
from ..tuners.patterns import as_patterns, match_modules
from ..tuners.presets import resolve_plan
from ..tuners.pha import PHA, PHAHyperNetwork, PrototypeSlot, default_plan
from ..tuners.pha_losses import FORMS, instance_instance_loss, nearest_prototype, prototype_instance_loss
from .config_check import check_init_keys
from .multitask_classifier import MultiTaskClassifier, task_head

TASK_SOURCES = ('given', 'retrieved')
PROTOTYPE_INITS = ('nearest', 'mean', 'random')


def make_retriever(in_features: int, hidden: int = 128, out_features: int = 64) -> nn.Sequential:
    """The instance-dense retriever MLP (106,688 parameters at in_features = 768)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


@MODELS.register_module()
@check_init_keys
class PHAClassifier(MultiTaskClassifier):
    """Args (besides :class:`MultiTaskClassifier`'s ``backbone``, ``tasks``, ``label_smoothing``):
        plan: the PHA plan (``tasks`` filled in from ``tasks``); default ``tuners.pha.default_plan``, one PHA
            entry on every block's mlp, rank 64. With ``task_source='retrieved'`` and a block index k, the
            default plan and PHA entries without ``targets`` go only on the blocks after k.
        retriever_features: ``'prepass'`` or a block index (see the module docstring).
        prepass_block: with ``'prepass'``, the block whose output ends the frozen pre-pass (None: the whole backbone).
        task_source: ``'given'`` or ``'retrieved'``.
        ins_weight / pro_weight: weights of L_ins-ins and L_pro-ins; pro_form: ``'official'`` or ``'infonce'``.
        temperature: of both contrastive losses (official: 0.1).
    """

    def __init__(self, backbone: dict[str, Any], tasks: Mapping[str, int], plan: list[dict] | None = None,
                 retriever_features: str | int = 'prepass', prepass_block: int | None = None,
                 task_source: str = 'given', ins_weight: float = 0.1,
                 pro_weight: float = 0.1, pro_form: str = 'official', temperature: float = 0.1,
                 label_smoothing: float = 0.1, data_preprocessor: dict | None = None, init_cfg=None):
        _check_choices(retriever_features, task_source, pro_form, len(tasks))
        # retrieving from block k in the same pass: PHA entries without targets go only on the blocks after k
        untargeted = plan is None or (not isinstance(plan, str) and all('targets' not in e for e in plan))
        self._after = retriever_features if untargeted and task_source == 'retrieved' and \
            retriever_features != 'prepass' else None
        super().__init__(backbone, tasks, plan=plan, adapters='shared', label_smoothing=label_smoothing,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._source = [_pha_source(self.backbone)]  # a list: the module is the backbone's, not registered twice
        self.retriever_features, self.task_source = retriever_features, task_source
        self.ins_weight, self.pro_weight, self.pro_form, self.temperature = ins_weight, pro_weight, pro_form, \
            temperature
        self.retriever = make_retriever(self.backbone.num_features, out_features=self.source.prototypes.embedding_dim)
        self._block = None if retriever_features == 'prepass' else _block(self.backbone, retriever_features)
        self.prepass_block = _prepass_block(self.backbone, retriever_features, prepass_block)

    def _attach(self, net: nn.Module, plan, plans: dict) -> nn.Module:
        spec = describe(net)
        plan = default_plan(spec) if plan is None else resolve_plan(plan, spec)
        if self._after is not None:
            blocks = [n for n, _ in match_modules(net, [spec.blocks], 'the backbone blocks')]
            later = blocks[self._after % len(blocks) + 1:]
            plan = [{**e, 'targets': [t.replace(spec.blocks, b) for b in later
                                      for t in as_patterns(e.get('targets') or PHA.default_targets(spec))]}
                    if e.get('type') == 'PHA' else e for e in plan]
        return super()._attach(net, with_tasks(plan, list(self.tasks)), plans)

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
        """The frozen backbone's tokens (B, ..., C) channels last: its output, or block ``prepass_block``'s patch
        tokens (the forward stops there)."""
        with torch.no_grad(), tuner_context(adapter=[BASE] * len(inputs)):
            if self.prepass_block is None:
                return self.backbone.forward_features(inputs)
            tokens = self.backbone.forward_intermediates(inputs, indices=[self.prepass_block], stop_early=True,
                                                         intermediates_only=True)[0]  # (B, C, H, W)
            return tokens.flatten(2).transpose(1, 2)  # (B, H*W, C)

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

    @torch.no_grad()
    def instance_embeddings(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 64) retriever embeddings, whatever the task (from block k: PHA may only sit after block k)."""
        if self._block is None:
            return self.embed(self._prepass(inputs))
        return self.run(inputs, [self.task_list[0]] * len(inputs), 'retrieved')[1]

    def add_task(self, name: str, num_classes: int, inputs: torch.Tensor, init: str = 'nearest') -> str | None:
        """A new task with its own head and prototype (few-shot transfer); returns the task whose prototype it copies.

        ``inputs`` (n, 3, H, W), preprocessed: the new task's few samples. ``init='nearest'``: the learned prototype
        nearest by cosine to the mean of their normalised retriever embeddings (PHA's transfer); ``'mean'``: the mean
        of the learned prototypes; ``'random'``: N(0, 1) as ``nn.Embedding`` (both for ablations, returning None).
        """
        if name in self.tasks:
            raise ValueError(f'task {name!r} already exists (tasks: {list(self.tasks)}); pick a new name')
        if init not in PROTOTYPE_INITS:
            raise ValueError(f'init must be one of {PROTOTYPE_INITS}, got {init!r}')
        protos = self.source.prototypes.weight.detach()
        nearest = None
        if init == 'nearest':
            mean = F.normalize(self.instance_embeddings(inputs), dim=-1).mean(0, keepdim=True)  # (1, 64)
            nearest = self.task_list[int(nearest_prototype(mean, protos)[0])]
            vector = protos[self.task_list.index(nearest)]
        else:
            vector = protos.mean(0) if init == 'mean' else torch.randn_like(protos[0])
        self._grow_prototypes(name, vector)
        self.tasks[name] = num_classes
        self.heads[name] = task_head(self.backbone.num_features, num_classes).to(protos.device)
        return nearest

    def _grow_prototypes(self, name: str, vector: torch.Tensor) -> None:
        old = self.source.prototypes.weight
        grown = nn.Embedding(len(old) + 1, old.shape[1], device=old.device, dtype=old.dtype)
        with torch.no_grad():
            grown.weight.copy_(torch.cat([old.detach(), vector[None]]))  # (tasks + 1, 64)
        self.source.prototypes = grown
        self.source.tasks = (*self.source.tasks, name)
        for op in tuned_ops(self.backbone):
            for _, _, tuner in op.all_tuners():
                if isinstance(tuner, PHA):
                    tuner.config.tasks = list(self.source.tasks)

    def transfer_parameters(self, task: str) -> list[nn.Parameter]:
        """Freeze everything but ``task``'s prototype and head; return them, to give an optimizer.

        The prototypes are one table, so a gradient hook zeroes the other rows: an optimizer without weight decay on
        the returned table (Adam, SGD) leaves the learned prototypes exactly as they are. A later call (another
        task) replaces that hook.
        """
        index = self.source.task_indices([task])[0]
        for p in self.parameters():
            p.requires_grad_(False)
        table = self.source.prototypes.weight
        table.requires_grad_(True)
        mask = torch.zeros(len(table), 1, device=table.device, dtype=table.dtype)
        mask[index] = 1
        if getattr(self, '_transfer_hook', None) is not None:
            self._transfer_hook.remove()  # an earlier call's mask would zero this task's row too
        self._transfer_hook = table.register_hook(lambda grad: grad * mask)
        head = list(self.heads[task].parameters())
        for p in head:
            p.requires_grad_(True)
        return [table, *head]

    def parameter_counts(self) -> dict[str, Any]:
        """The parent's table, plus the hypernetwork, the prototypes and the retriever reported apart."""
        counts = super().parameter_counts()
        return {**counts, 'hypernetwork': self.source.hypernetwork_parameters(),
                'prototypes': self.source.prototypes.weight.numel(),
                'retriever': sum(p.numel() for p in self.retriever.parameters())}


@MODELS.register_module()
@check_init_keys
class TaskContextClassifier(MultiTaskClassifier):
    """One shared task-conditioned adapter (``HyperAdapter`` = Hyperformer++, ``Polyhistor``, ``PolyhistorLite``,
    ``TaskAdapter``) and per-task heads: those tuners read one task per call (``tuner_context(task='digit')``), so a
    mixed batch runs as one backbone call per task present, each under its task. ``tasks`` fill the plan entries."""

    def __init__(self, backbone: dict[str, Any], tasks: Mapping[str, int], plan: list[dict],
                 label_smoothing: float = 0.0, data_preprocessor: dict | None = None, init_cfg=None):
        super().__init__(backbone, tasks, plan=plan, adapters='shared', label_smoothing=label_smoothing,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def _attach(self, net: nn.Module, plan, plans: dict) -> nn.Module:
        return super()._attach(net, with_tasks(resolve_plan(plan, describe(net)), list(self.tasks)), plans)

    def features(self, inputs: torch.Tensor, task: Sequence[str]) -> torch.Tensor:
        """(B, num_features): rows grouped by task, each group through the adapter its task generates."""
        out = None
        for t in dict.fromkeys(task):
            rows = torch.tensor([i for i, s in enumerate(task) if s == t], device=inputs.device)
            with tuner_context(task=t):
                feats = self.backbone(inputs[rows])  # (n_t, C)
            out = feats.new_zeros(len(task), feats.shape[-1]) if out is None else out
            out = out.index_copy(0, rows, feats)
        return out


@METRICS.register_module()
class PHARetrievalAccuracy(BaseMetric):
    """How often a PHA model's retrieved prototype is the sample's own task (percent): ``retrieval/<task>`` per task
    and ``retrieval/all`` over every sample (logged as ``val/retrieval/...``). Reads ``task`` and
    ``retrieved_task`` of each prediction (``PHAClassifier`` sets both in either ``task_source``)."""

    default_prefix = ''

    def process(self, data_batch, data_samples: Sequence[Mapping]) -> None:
        for sample in data_samples:
            if 'retrieved_task' not in sample:
                raise KeyError("PHARetrievalAccuracy reads each prediction's 'retrieved_task', which only a "
                               'PHAClassifier sets; drop the metric from the evaluator of other models')
            self.results.append((sample['task'], sample['retrieved_task']))

    def compute_metrics(self, results: list) -> dict[str, float]:
        return retrieval_accuracy([t for t, _ in results], [r for _, r in results])


def retrieval_accuracy(tasks: Sequence[str], retrieved: Sequence[str]) -> dict[str, float]:
    """Percent of samples whose retrieved task is their own, per task (``retrieval/<task>``) and overall."""
    out = {}
    for task in dict.fromkeys(tasks):
        hits = [r == t for t, r in zip(tasks, retrieved) if t == task]
        out[f'retrieval/{task}'] = 100.0 * sum(hits) / len(hits)
    out['retrieval/all'] = 100.0 * sum(r == t for t, r in zip(tasks, retrieved)) / len(tasks)
    return out


def build_pha_classifier(model: str = 'vit_base_patch16_224', tasks: int | Mapping[str, int] = 2,
                         retriever_features: str | int = 'prepass', pretrained=None, **kwargs) -> PHAClassifier:
    """A PHA multi-task model (the default plan: rank 64 on every block's mlp) on the timm backbone ``model``,
    for benchmarks: ``tasks`` a count (``task0``, ``task1``, ... with 10 classes each) or name -> classes;
    ``retriever_features`` ``'prepass'`` or a block index; ``kwargs`` go to :class:`PHAClassifier`
    (``task_source='retrieved'`` with a block index puts PHA only on the blocks after it)."""
    tasks = {f'task{i}': 10 for i in range(tasks)} if isinstance(tasks, int) else dict(tasks)
    return PHAClassifier(backbone=dict(model=model, pretrained=pretrained), tasks=tasks,
                         retriever_features=retriever_features, **kwargs)


def with_tasks(plan: list[dict], tasks: list[str]) -> list[dict]:
    """The plan with ``tasks`` filled into every task-conditioned entry that leaves them out."""
    return [{**e, 'tasks': e.get('tasks') or tasks} if issubclass(TUNERS.get(e.get('type'), object), TaskConditioned)
            else e for e in plan]


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


def _prepass_block(backbone: nn.Module, features, block: int | None) -> int | None:
    if block is None:
        return None
    if features != 'prepass':
        raise ValueError(f"prepass_block={block} stops the frozen pre-pass, so it needs retriever_features='prepass' "
                         f'(got {features!r}); drop prepass_block to read block {features} in the same pass')
    if not hasattr(backbone, 'forward_intermediates'):
        raise ValueError(f'prepass_block needs a backbone with timm\'s forward_intermediates; '
                         f'{type(backbone).__name__} has none: drop prepass_block (the pre-pass runs the whole '
                         'backbone)')
    _block(backbone, block, 'prepass_block')  # a valid index
    blocks = [n for n, _ in match_modules(backbone, [describe(backbone).blocks], 'the backbone blocks')]
    stops = [f.get('module') for f in getattr(backbone, 'feature_info', None) or [] if isinstance(f, dict)]
    if stops != blocks:  # forward_intermediates(indices=[k]) would stop after its k-th feature, not block k
        raise ValueError(f'prepass_block={block} names block {blocks[block]}, but {type(backbone).__name__}\'s '
                         f'forward_intermediates stops at {stops or "unknown points"} (its stages), not at every '
                         'block; drop prepass_block (the pre-pass then runs the whole backbone)')
    return block % len(blocks)


def _pha_source(backbone: nn.Module) -> PHAHyperNetwork:
    sources = [t.source for op in tuned_ops(backbone) for _, _, t in op.all_tuners() if isinstance(t, PHA)]
    if not sources or any(s is not sources[0] for s in sources):
        raise ValueError('PHAClassifier needs a plan whose PHA entries share one hypernetwork (one PHA entry, or '
                         f'entries with the same name); found {len({id(s) for s in sources})}')
    return sources[0]


def _block(backbone: nn.Module, index: int, what: str = 'retriever_features') -> nn.Module:
    blocks = match_modules(backbone, [describe(backbone).blocks], 'the backbone blocks')
    if isinstance(index, bool) or not isinstance(index, int) or not -len(blocks) <= index < len(blocks):
        raise ValueError(f'{what}={index!r} is not a block index; the backbone has {len(blocks)} blocks')
    return blocks[index][1]
