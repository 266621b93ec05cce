"""Task-conditioned bottleneck adapters whose weights come from a *weight source*, chosen per call by the task in
the tuner context (``with tuner_context(task='semseg'): backbone(x)``)::

    U_t(x) = s * W_up(t, l) act(W_down(t, l) x + b_down(t, l)) + b_up(t, l)     (sequential: x + U_t(x))

with ``W_down`` (r, d), ``W_up`` (d, r), ``r = d / reduction`` for a layer of width d. The sources:

- ``TaskAdapter``: one adapter per task, its own parameters (the per-task adapter baseline).
- ``HyperAdapter`` (Hyperformer++, Karimi Mahabadi et al. 2021, arXiv 2106.04489): a hypernetwork shared by all
  layers maps ``z = LN(MLP([e_task; e_layer]))`` to the whole matrices, ``[vec W_down; b_down] = G_down z`` and
  ``[vec W_up; b_up] = G_up z``; one generator pair per distinct width (a hierarchical backbone has four).
- ``Polyhistor`` (Liu et al., NeurIPS 2022, arXiv 2210.03265): decomposed hypernetworks, separate small generators
  for the down- and up-projection *template kernels* ``T_down`` (r1, d1) and ``T_up`` (d1, r1) sized for the
  smallest width d1, and layer-wise scaling kernels ``S_l`` (m, m), ``m = d / d1``, that expand a template to the
  layer by a Kronecker product: ``W_down = S_down_l (x) T_down``, ``W_up = S_up_l (x) T_up``.
- ``PolyhistorLite``: the lighter hypernetwork: each template is generated as a rank-k product of two factors,
  ``T = P(z) Q(z)^T``, so the generators emit (r1 + d1) k numbers instead of r1 d1.

The hypernetwork is one module shared by every tuner of a plan entry, stored once in ``model.petl_sources``
(``sources.py``): counted once, saved and loaded with the tuners. Up-projections start at zero (zero generator
for ``G_up`` / ``T_up``), so the tuned model starts equal to the frozen one.
"""
import dataclasses
import json
import math

import torch
from torch import nn
from torch.nn import functional as F

from .adapter import ACTIVATIONS
from .base import OpInfo, Tuner
from .config import TunerConfig
from .context import require_context
from .layers import TaskConditioned
from .registry import register_tuner
from .task_vectors import TaskVector, load_parameter_vector

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # W_down (r, d), b_down, W_up (d, r), b_up
_WEIGHT_NAMES = ('down', 'down_bias', 'up', 'up_bias')  # TaskAdapter's parameters, stacked over tasks


@dataclasses.dataclass
class TaskAdapterConfig(TunerConfig):
    tasks: list[str] | None = None  # task names, in the order of the model's tasks (required)
    reduction: int = 4  # bottleneck r = width / reduction (adapters grow with the stage width on Swin)
    placement: str = 'sequential'
    act: str = 'gelu'
    scale: float = 1.0

    def __post_init__(self):
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f'{type(self).__name__}.tasks must list distinct task names, got {self.tasks}; a '
                             "MultiTaskDenseModel fills in its own tasks when the plan leaves them out")
        self.tasks = list(self.tasks)
        if self.reduction < 1:
            raise ValueError(f'reduction must be >= 1, got {self.reduction}')
        self.check_choice('placement', ('parallel', 'sequential'))
        self.check_choice('act', tuple(ACTIVATIONS))


class _TaskConditionedAdapter(TaskConditioned, Tuner):
    """The adapter computation; subclasses say where ``weights(task)`` come from."""

    context_keys = ('task',)

    def __init__(self, config: TaskAdapterConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        self.width = op.out_features
        self.rank = self.width // config.reduction
        self.act = ACTIVATIONS[config.act]()

    def check_op(self, op: OpInfo) -> None:
        if self.config.placement == 'parallel' and op.in_features != op.out_features:
            raise ValueError(f'a parallel {self.type_name} on {op.name!r} needs equal input and output widths '
                             f'({op.in_features} != {op.out_features}); use placement="sequential"')
        if op.out_features % self.config.reduction:
            raise ValueError(f'{self.type_name}: width {op.out_features} of {op.name!r} is not divisible by '
                             f'reduction={self.config.reduction}')

    def task_index(self, task: str) -> int:
        if task not in self.config.tasks:
            raise KeyError(f'{self.type_name} on {self.op_name!r} knows tasks {self.config.tasks}, not {task!r}')
        return self.config.tasks.index(task)

    def weights(self, task: str) -> Weights:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d) channels last (tokens or window tokens) -> same shape."""
        task = require_context('task', f'{self.type_name} on {self.op_name!r}')
        w_down, b_down, w_up, b_up = (t.to(x.dtype) for t in self.weights(task))
        update = F.linear(self.act(F.linear(x, w_down, b_down)), w_up, b_up) * self.config.scale  # (..., d)
        return update if self.placement == 'parallel' else x + update

    # task vector (task_vectors.py): the adapter weights of every task, generated or stored
    def task_vector(self) -> TaskVector:
        """Stacked over ``config.tasks``: down (T, r, d), down_bias (T, r), up (T, d, r), up_bias (T, d)."""
        per_task = [self.weights(t) for t in self.config.tasks]
        return {k: torch.stack([w[i].detach() for w in per_task]) for i, k in enumerate(_WEIGHT_NAMES)}

    def task_space(self) -> str:
        c = self.config
        return f'TaskAdapter {json.dumps([c.tasks, c.reduction, c.placement, c.act, c.scale])}'

    def rebuild_entry(self) -> dict:
        c = self.config
        return {'type': 'TaskAdapter', 'tasks': list(c.tasks), 'reduction': c.reduction, 'placement': c.placement,
                'act': c.act, 'scale': c.scale}

    def load_task_vector(self, vector: TaskVector) -> None:
        raise ValueError(f'{self.type_name} generates its weights from a hypernetwork; rebuild its task vector as a '
                         'TaskAdapter (rebuild_entry), which stores them')


@register_tuner
class TaskAdapter(_TaskConditionedAdapter):
    """One bottleneck adapter per task (its own parameters); the context's task picks it."""

    type_name = 'TaskAdapter'
    config_cls = TaskAdapterConfig

    def __init__(self, config: TaskAdapterConfig, op: OpInfo):
        super().__init__(config, op)
        n, d, r = len(config.tasks), self.width, self.rank
        self.down = nn.Parameter(torch.empty(n, r, d))  # (tasks, r, d)
        self.down_bias = nn.Parameter(torch.zeros(n, r))
        self.up = nn.Parameter(torch.zeros(n, d, r))  # (tasks, d, r)
        self.up_bias = nn.Parameter(torch.zeros(n, d))
        for w in self.down:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))

    def weights(self, task: str) -> Weights:
        i = self.task_index(task)
        return self.down[i], self.down_bias[i], self.up[i], self.up_bias[i]

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


class HyperNetwork(nn.Module):
    """Task and layer embeddings -> conditioning vector ``z`` (embed_dim,), plus the generator heads reading z.

    ``z = LayerNorm(W2 ReLU(W1 [e_task; e_layer] + b1) + b2)`` (Hyperformer++'s task projector on the concatenated
    embeddings). Every adapter position (an op of the plan) gets its own layer embedding, appended as tuners bind;
    heads are created by name the first time a tuner asks for one, so one network serves every width.
    """

    def __init__(self, tasks: list[str], task_dim: int, layer_dim: int, hidden_dim: int, embed_dim: int):
        super().__init__()
        self.tasks = tuple(tasks)
        self.layer_dim, self.embed_dim = layer_dim, embed_dim
        self.task_embeddings = nn.Parameter(torch.randn(len(tasks), task_dim))  # (tasks, task_dim)
        self.layer_embeddings = nn.ParameterList()  # one (layer_dim,) per adapter position
        self.projector = nn.Sequential(nn.Linear(task_dim + layer_dim, hidden_dim), nn.ReLU(),
                                       nn.Linear(hidden_dim, embed_dim))
        self.norm = nn.LayerNorm(embed_dim)
        self.heads = nn.ModuleDict()
        for layer in self.projector:
            if isinstance(layer, nn.Linear):
                _generator_init(layer)

    def add_layer(self) -> int:
        ref = self.task_embeddings
        self.layer_embeddings.append(nn.Parameter(torch.randn(self.layer_dim, device=ref.device, dtype=ref.dtype)))
        return len(self.layer_embeddings) - 1

    def head(self, name: str, out_features: int, zero: bool = False) -> nn.Linear:
        """The generator ``Linear(embed_dim, out_features)`` called ``name`` (created on first request)."""
        if name not in self.heads:
            layer = nn.Linear(self.embed_dim, out_features, device=self.task_embeddings.device)
            _generator_init(layer, zero)
            self.heads[name] = layer
        return self.heads[name]

    def embed(self, task: str, layer: int) -> torch.Tensor:
        if task not in self.tasks:
            raise KeyError(f'the hypernetwork was built for tasks {list(self.tasks)}; got task {task!r}')
        e = torch.cat([self.task_embeddings[self.tasks.index(task)], self.layer_embeddings[layer]])
        return self.norm(self.projector(e))  # (embed_dim,)


def _generator_init(layer: nn.Linear, zero: bool = False) -> None:
    """Hyperformer's initialisation of hypernetwork layers: N(0, 0.01) weights, zero biases (zero: all zero)."""
    if zero:
        nn.init.zeros_(layer.weight)
    else:
        nn.init.normal_(layer.weight, std=1e-2)
    nn.init.zeros_(layer.bias)


@dataclasses.dataclass
class HyperAdapterConfig(TaskAdapterConfig):
    task_dim: int = 64  # task embedding
    layer_dim: int = 64  # layer (adapter position) embedding
    hidden_dim: int = 128  # task projector hidden width (Hyperformer: 128)
    embed_dim: int = 64  # z, the generators' input (Hyperformer: projected_task_embedding_dim 64)


class _Generated(_TaskConditionedAdapter):
    """Adapters whose weights a shared :class:`HyperNetwork` generates; one per plan entry, keyed by its name."""

    config_cls = HyperAdapterConfig

    def __init__(self, config: HyperAdapterConfig, op: OpInfo):
        super().__init__(config, op)
        self._source: list[HyperNetwork] = []  # a list: the shared network is registered once, on the model
        self.layer_index = -1

    def make_source(self) -> HyperNetwork:
        c = self.config
        return HyperNetwork(c.tasks, c.task_dim, c.layer_dim, c.hidden_dim, c.embed_dim)

    def source_settings(self) -> dict:
        """What the shared network depends on; every tuner binding to it must agree."""
        fields = ('tasks', 'task_dim', 'layer_dim', 'hidden_dim', 'embed_dim', 'reduction', 'template_dim',
                  'factor_rank')
        return {'type': self.type_name, **{f: getattr(self.config, f, None) for f in fields}}

    def bind(self, lookup) -> None:
        key = self.config.name or self.type_name.lower()
        source = lookup.shared(key, self.make_source, self.source_settings(), f'{self.type_name} on {self.op_name!r}')
        self.layer_index = source.add_layer()
        self._source = [source]
        self.build(source)

    def build(self, source: HyperNetwork) -> None:
        """Create the generator heads / per-layer parameters this layer needs."""

    @property
    def source(self) -> HyperNetwork:
        if not self._source:
            raise RuntimeError(f'{self.type_name} on {self.op_name!r} is not bound to its hypernetwork; attach it '
                               'with petl_vision.apply_tuners')
        return self._source[0]


@register_tuner
class HyperAdapter(_Generated):
    """Hyperformer++: the hypernetwork emits the whole adapter matrices, one generator pair per width."""

    type_name = 'HyperAdapter'

    def build(self, source: HyperNetwork) -> None:
        d, r = self.width, self.rank
        source.head(f'down_{d}x{r}', r * d + r)
        source.head(f'up_{d}x{r}', d * r + d, zero=True)

    def weights(self, task: str) -> Weights:
        d, r = self.width, self.rank
        z = self.source.embed(task, self.layer_index)
        down = self.source.heads[f'down_{d}x{r}'](z)  # (r*d + r,)
        up = self.source.heads[f'up_{d}x{r}'](z)  # (d*r + d,)
        return down[:r * d].view(r, d), down[r * d:], up[:d * r].view(d, r), up[d * r:]


@dataclasses.dataclass
class PolyhistorConfig(HyperAdapterConfig):
    template_dim: int | None = None  # d1 of the template kernels; None: the width of the plan's first layer
    factor_rank: int | None = None  # k: templates generated as rank-k factor products (Polyhistor-Lite)

    def __post_init__(self):
        super().__post_init__()
        if self.factor_rank is not None and self.factor_rank < 1:
            raise ValueError(f'factor_rank must be >= 1 or None, got {self.factor_rank}')


class TemplateHyperNetwork(HyperNetwork):
    """A :class:`HyperNetwork` whose heads generate the template kernels ``T_down`` (r1, d1), ``T_up`` (d1, r1):
    whole (``factor_rank=None``) or as ``P Q^T`` with rank-k factors (Polyhistor-Lite)."""

    def __init__(self, tasks, task_dim, layer_dim, hidden_dim, embed_dim, template_dim: int, reduction: int,
                 factor_rank: int | None):
        super().__init__(tasks, task_dim, layer_dim, hidden_dim, embed_dim)
        if template_dim % reduction:
            raise ValueError(f'template width {template_dim} is not divisible by reduction={reduction}')
        self.template_dim, self.template_rank, self.factor_rank = template_dim, template_dim // reduction, factor_rank
        d1, r1, k = template_dim, self.template_rank, factor_rank
        if k is None:
            self.head('down', r1 * d1)
            self.head('up', d1 * r1, zero=True)
        else:
            self.head('down_left', r1 * k)
            self.head('down_right', d1 * k)
            self.head('up_left', d1 * k, zero=True)
            self.head('up_right', r1 * k)

    def templates(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (embed_dim,) -> T_down (r1, d1), T_up (d1, r1)."""
        d1, r1, k = self.template_dim, self.template_rank, self.factor_rank
        h = self.heads
        if k is None:
            return h['down'](z).view(r1, d1), h['up'](z).view(d1, r1)
        t_down = h['down_left'](z).view(r1, k) @ h['down_right'](z).view(d1, k).t()  # (r1, d1)
        t_up = h['up_left'](z).view(d1, k) @ h['up_right'](z).view(r1, k).t()  # (d1, r1)
        return t_down, t_up


@register_tuner
class Polyhistor(_Generated):
    """Decomposed hypernetworks (templates for the smallest width) + layer-wise scaling kernels (Kronecker)."""

    type_name = 'Polyhistor'
    config_cls = PolyhistorConfig

    def make_source(self) -> TemplateHyperNetwork:
        c = self.config
        return TemplateHyperNetwork(c.tasks, c.task_dim, c.layer_dim, c.hidden_dim, c.embed_dim,
                                    c.template_dim or self.width, c.reduction, c.factor_rank)

    def build(self, source: TemplateHyperNetwork) -> None:
        d1 = source.template_dim
        if self.width % d1:
            raise ValueError(f'{self.type_name}: width {self.width} of {self.op_name!r} is not a multiple of the '
                             f'template width {d1}; set template_dim to a common divisor of the targets\' widths')
        m = self.width // d1
        device = source.task_embeddings.device
        # identity scaling: each d1-channel group starts with its own copy of the template (block diagonal)
        self.scale_down = nn.Parameter(torch.eye(m, device=device))  # (m, m)
        self.scale_up = nn.Parameter(torch.eye(m, device=device))
        self.down_bias = nn.Parameter(torch.zeros(self.rank, device=device))
        self.up_bias = nn.Parameter(torch.zeros(self.width, device=device))

    def weights(self, task: str) -> Weights:
        t_down, t_up = self.source.templates(self.source.embed(task, self.layer_index))
        w_down = torch.kron(self.scale_down, t_down)  # (m*r1, m*d1) = (r, d)
        w_up = torch.kron(self.scale_up, t_up)  # (m*d1, m*r1) = (d, r)
        return w_down, self.down_bias, w_up, self.up_bias


@dataclasses.dataclass
class PolyhistorLiteConfig(PolyhistorConfig):
    factor_rank: int | None = 4


@register_tuner
class PolyhistorLite(Polyhistor):
    """Polyhistor with the lighter hypernetwork: rank-``factor_rank`` factors of the templates."""

    type_name = 'PolyhistorLite'
    config_cls = PolyhistorLiteConfig
