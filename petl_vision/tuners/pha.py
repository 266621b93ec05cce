"""PHA, prototype-based hyper-adapters (Zhao, Fu & He, EMNLP 2023, arXiv 2310.11670; official code Bumble666/PHA).

Each layer's bottleneck adapter, parallel to the FFN on the same normed input (``h + FFN(LN h) + A(LN h)``), is
generated per sample from the sample's *task prototype* ``p`` by one hypernetwork shared by every task and layer::

    z = LayerNorm(W2 ReLU(W1 [p; e_l] + b1) + b2)                      p, e_l, z: (64,)
    W_down, b_down, W_up, b_up = H_down z, h_down z, H_up z, h_up z    W_down (d, r), W_up (r, d)
    A(x) = ReLU(x W_down + b_down) W_up + b_up                         no internal residual

with layer embeddings ``e_l`` (``nn.Embedding(L, 64)``) and prototypes ``nn.Embedding(tasks, 64)``, both in the
shared source (:class:`PHAHyperNetwork`, stored once in ``model.petl_sources``). The heads use the official
hyperfan-in initialisation ``U(+-1e-3 sqrt(3 / (64 * fan_in)))`` (fan_in = d for ``W_down``, r for ``W_up``; the
bias heads ``U(+-1e-3 sqrt(3 / 64))``), biases 0: the tuned model starts *near*, not at, the frozen one.

The prototype of each sample reaches the tuners through the tuner context, per sample, so a batch may mix tasks:

- ``tuner_context(task='digit')`` or ``tuner_context(task=['digit', 'parity', ...])`` (one name per sample): the
  learned prototype of that task (the official code always does this, at inference too, with the gold task);
- ``tuner_context(prototype=P)`` with ``P`` (B, 64) or (64,): given vectors (a retrieved or new task's prototype),
  or a :class:`PrototypeSlot` that the model fills during the same forward pass (retrieval from an early block's
  features: the adapters after that block read it).

Weights are generated once per distinct prototype of the batch and applied per sample with a batched matmul. The
instance retriever and the contrastive losses live in the model (``petl_vision/models/pha_classifier.py``,
``pha_losses.py``): they read pooled backbone features, which no tuner sees.
"""
import dataclasses
import json
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .base import OpInfo, Tuner
from .config import TunerConfig
from .context import context_values
from .layers import TaskConditioned
from .registry import register_tuner

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # W_down (P, d, r), b_down, W_up, b_up


class PrototypeSlot:
    """A prototype (B, proto_dim) that becomes known during the forward pass (set by the model's retriever hook)."""

    def __init__(self, where: str):
        self.where = where
        self.value: torch.Tensor | None = None

    def get(self, op_name: str) -> torch.Tensor:
        if self.value is None:
            raise RuntimeError(f'PHA on {op_name!r} runs before its prototype is retrieved (at {self.where}); '
                               'target only the blocks after the retriever\'s block, or retrieve from a pre-pass')
        return self.value


@dataclasses.dataclass
class PHAConfig(TunerConfig):
    tasks: list[str] | None = None  # task names, one prototype each (required)
    rank: int = 64  # adapter bottleneck r (the paper: 64)
    proto_dim: int = 64  # prototype (and retriever output) width
    layer_dim: int = 64  # layer embedding width
    hidden_dim: int = 128  # hypernetwork body hidden width
    embed_dim: int = 64  # z, the heads' input

    def __post_init__(self):
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f'PHAConfig.tasks must list distinct task names, got {self.tasks}; a PHAClassifier '
                             'fills in its own tasks when the plan leaves them out')
        self.tasks = list(self.tasks)
        for field in ('rank', 'proto_dim', 'layer_dim', 'hidden_dim', 'embed_dim'):
            if getattr(self, field) < 1:
                raise ValueError(f'PHAConfig.{field} must be >= 1, got {getattr(self, field)}')


def hyperfan_in_(layer: nn.Linear, hyper_in: int, main_in: int = 1) -> None:
    """The official initialisation of a generator head: ``U(+-1e-3 sqrt(3 / (hyper_in * main_in)))``, bias 0."""
    bound = 1e-3 * math.sqrt(3 / (hyper_in * main_in))
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)


class PHAHyperNetwork(nn.Module):
    """Prototypes, layer embeddings, the body and, per adapter width, the four generator heads."""

    def __init__(self, config: PHAConfig, num_layers: int):
        super().__init__()
        c = config
        self.tasks = tuple(c.tasks)
        self.prototypes = nn.Embedding(len(c.tasks), c.proto_dim)  # (tasks, 64), N(0, 1) as nn.Embedding
        self.layer_embed = nn.Embedding(num_layers, c.layer_dim)  # (L, 64)
        self.body = nn.Sequential(nn.Linear(c.proto_dim + c.layer_dim, c.hidden_dim), nn.ReLU(),
                                  nn.Linear(c.hidden_dim, c.embed_dim))
        self.norm = nn.LayerNorm(c.embed_dim, eps=1e-6)  # (the official eps)
        self.heads = nn.ModuleDict()
        self.embed_dim = c.embed_dim

    def add_width(self, d: int, r: int) -> None:
        """The heads generating a (d, r) adapter (one set per width: a Swin has one per stage)."""
        key = f'{d}x{r}'
        if key in self.heads:
            return
        e, device = self.embed_dim, self.layer_embed.weight.device
        heads = nn.ModuleDict({'up': nn.Linear(e, r * d, device=device), 'down': nn.Linear(e, d * r, device=device),
                               'up_bias': nn.Linear(e, d, device=device), 'down_bias': nn.Linear(e, r, device=device)})
        hyperfan_in_(heads['up'], e, r)
        hyperfan_in_(heads['down'], e, d)
        hyperfan_in_(heads['up_bias'], e)
        hyperfan_in_(heads['down_bias'], e)
        self.heads[key] = heads

    def task_indices(self, tasks: Sequence[str]) -> list[int]:
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise KeyError(f'PHA has prototypes for tasks {list(self.tasks)}, not {unknown}')
        return [self.tasks.index(t) for t in tasks]

    def generate(self, prototypes: torch.Tensor, layer: int, d: int, r: int) -> Weights:
        """prototypes (P, proto_dim) -> the adapter of layer ``layer`` for each: W_down (P, d, r), b_down (P, r),
        W_up (P, r, d), b_up (P, d)."""
        e_l = self.layer_embed.weight[layer].expand(len(prototypes), -1)  # (P, layer_dim)
        z = self.norm(self.body(torch.cat([prototypes, e_l], dim=-1)))  # (P, embed_dim)
        h = self.heads[f'{d}x{r}']
        n = len(prototypes)
        return h['down'](z).view(n, d, r), h['down_bias'](z), h['up'](z).view(n, r, d), h['up_bias'](z)

    def hypernetwork_parameters(self) -> int:
        """Parameters of the hypernetwork proper: everything but the prototypes (reported apart)."""
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith('prototypes.'))


@register_tuner
class PHA(TaskConditioned, Tuner):
    """A parallel bottleneck adapter whose weights the shared :class:`PHAHyperNetwork` generates per sample."""

    type_name = 'PHA'
    config_cls = PHAConfig
    placement = 'parallel'
    identity_at_init = False  # hyperfan-in heads: near the frozen model, not equal to it
    context_keys = ('task', 'prototype')

    def __init__(self, config: PHAConfig, op: OpInfo):
        super().__init__(config, op)
        if op.in_features != op.out_features:
            raise ValueError(f'PHA on {op.name!r} is parallel to its op and needs equal input and output widths '
                             f'({op.in_features} != {op.out_features}); target the blocks\' mlp')
        self.width, self.rank = op.out_features, config.rank
        self.layer_index = op.index
        self.num_layers = op.count
        self._source: list[PHAHyperNetwork] = []  # a list: the shared network is registered once, on the model

    @classmethod
    def example_plan(cls, spec):
        """The suites' tiny backbones are 16-64 wide: a bottleneck of 4 (the paper's 64 would exceed them)."""
        return [{**entry, 'rank': 4} for entry in super().example_plan(spec)]

    def source_settings(self) -> dict:
        return {'type': self.type_name, 'layers': self.num_layers, **dataclasses.asdict(self.config),
                'targets': None, 'name': None}

    def bind(self, lookup) -> None:
        source = lookup.shared(self.config.name or 'pha', lambda: PHAHyperNetwork(self.config, self.num_layers),
                               self.source_settings(), f'PHA on {self.op_name!r}')
        source.add_width(self.width, self.rank)
        self._source = [source]

    @property
    def source(self) -> PHAHyperNetwork:
        if not self._source:
            raise RuntimeError(f'PHA on {self.op_name!r} is not bound to its hypernetwork; attach it with '
                               'petl_vision.apply_tuners')
        return self._source[0]

    def conditioning(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(P, proto_dim) distinct prototypes of this call and, per sample, which one (None: one for all rows)."""
        ctx = context_values()
        where = f'PHA on {self.op_name!r}'
        if ctx.get('prototype') is not None:
            p = ctx['prototype']
            p = p.get(self.op_name) if isinstance(p, PrototypeSlot) else p
            p = p.reshape(-1, p.shape[-1])  # (B or 1, proto_dim)
            if len(p) == 1:
                return p, None
            return p, torch.arange(len(p), device=p.device)
        if ctx.get('task') is None:
            raise RuntimeError(f"{where} needs 'task' (a name, or one per sample) or 'prototype' in the tuner "
                               "context; call the model inside `with petl_vision.tuner_context(task=...):`")
        task = ctx['task']
        names = [task] if isinstance(task, str) else list(task)
        unique = list(dict.fromkeys(names))
        weight = self.source.prototypes.weight
        protos = weight[torch.tensor(self.source.task_indices(unique), device=weight.device)]  # (P, proto_dim)
        if len(unique) == 1:
            return protos, None
        return protos, torch.tensor([unique.index(t) for t in names], device=weight.device)

    # task vector (task_vectors.py): the generated adapter of every task, stored as a TaskAdapter would hold it
    def task_vector(self) -> dict[str, torch.Tensor]:
        """Stacked over ``config.tasks``: down (T, r, d), down_bias (T, r), up (T, d, r), up_bias (T, d)."""
        protos = self.source.prototypes.weight[torch.tensor(self.source.task_indices(self.config.tasks))]
        w_down, b_down, w_up, b_up = (t.detach() for t in self.source.generate(protos, self.layer_index, self.width,
                                                                                self.rank))
        return {'down': w_down.transpose(1, 2), 'down_bias': b_down, 'up': w_up.transpose(1, 2), 'up_bias': b_up}

    def task_space(self) -> str:
        if self.width % self.rank:
            raise TypeError(f'PHA on {self.op_name!r}: rank {self.rank} does not divide width {self.width}, so its '
                            'generated adapters have no TaskAdapter form to mix in')
        return f'TaskAdapter {json.dumps([self.config.tasks, self.width // self.rank, "parallel", "relu", 1.0])}'

    def rebuild_entry(self) -> dict:
        self.task_space()
        return {'type': 'TaskAdapter', 'tasks': list(self.config.tasks), 'reduction': self.width // self.rank,
                'placement': 'parallel', 'act': 'relu', 'scale': 1.0}

    def load_task_vector(self, vector: dict[str, torch.Tensor]) -> None:
        raise ValueError('PHA generates its weights from a hypernetwork; rebuild its task vector as a TaskAdapter '
                         '(rebuild_entry), which stores them')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (R, ..., d) channels last, R rows sample-major (R = B, or B times windows) -> the update, same shape."""
        protos, index = self.conditioning()
        w_down, b_down, w_up, b_up = (t.to(x.dtype) for t in self.source.generate(protos, self.layer_index,
                                                                                   self.width, self.rank))
        if index is None:  # one prototype for every row: plain linear layers
            return F.linear(F.relu(F.linear(x, w_down[0].t(), b_down[0])), w_up[0].t(), b_up[0])
        rows, batch = x.shape[0], len(index)
        if rows % batch:
            raise ValueError(f'PHA on {self.op_name!r}: the context gives {batch} samples, but the op sees {rows} rows '
                             '(not a multiple); pass one task / prototype per sample of the batch this op runs on')
        index = index.repeat_interleave(rows // batch)  # (R,) each row's prototype
        h = x.reshape(rows, -1, self.width)  # (R, N, d)
        h = F.relu(torch.baddbmm(b_down[index].unsqueeze(1), h, w_down[index]))  # (R, N, r)
        return torch.baddbmm(b_up[index].unsqueeze(1), h, w_up[index]).reshape(x.shape)  # (R, N, d) -> x's shape



def default_plan(spec) -> list[dict]:
    """PHA as the paper: one shared hypernetwork, rank-64 adapters parallel to every block's MLP (``PHAClassifier``'s
    default). Not a preset: presets attach to a backbone alone, and PHA needs the task names (``'tasks'``), which
    ``PHAClassifier`` fills in (add them to the entry for ``apply_tuners``)."""
    return [{'type': 'PHA', 'targets': PHA.default_targets(spec), 'rank': 64}]
