"""ProLAD's adapters (Yang, Kim, Yun, AAAI 2024, https://arxiv.org/abs/2312.11260), which extend TSA's task-specific
adapters (Li, Liu, Bilen, CVPR 2022, https://arxiv.org/abs/2107.00358), as core tuners:

- :class:`TA`, the adapter without normalisation: a parallel linear map ``O(x) + alpha x``. On a k x k
  convolution (ResNet's 3x3 convs) ``alpha`` is a 1x1 convolution with O's stride, so its output lies on O's
  grid; on a Linear (ViT/Swin attention and MLP projections) it is a matrix of O's shape. Initialised tiny:
  ``N(0, 1e-5^2)`` (ProLAD's replication) or ``1e-4 * I`` (TSA's ``eye``).
- :class:`TAN`, the adapter with a normalisation layer: a parallel residual branch ``O(x) + W * norm(x)`` whose
  input is normalised per channel with the episode's own statistics (:class:`EpisodeNorm`: no affine,
  statistics reset per episode); ``W`` is a grouped convolution (groups 8, O's kernel and stride) on
  ResNet and a grouped linear map on tokens, initialised ``N(0, 1e-4^2)``.
- :class:`PreClassifierAlignment`, ``beta``: a d x d linear map of the features before the prototype
  classifier (URL's pre-classifier alignment), identity-initialised, applied after the op whose pooled output
  is the feature vector (so it commutes with average pooling or class-token selection).

ProLAD trains TA (stage 1), then TA and TAN (stage 2) and uses one ``beta`` per stage; the stages switch the
tuners on and off with the core's :func:`~petl_vision.tuners.set_tuners_active`. The training schedule lives in
:mod:`petl_vision.fewshot.prolad`.

Deviation from the replication: its TAN reads the block's first conv output and adds to the block's residual
sum; ours is parallel to the block's last k x k conv (the core's placement), i.e. it reads that conv's input
(after BN and ReLU, which per-channel normalisation mostly absorbs) and its output passes the frozen BN's
per-channel scale before the residual sum.
"""
import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from .base import OpInfo, Tuner
from .config import TunerConfig
from .registry import register_tuner
from .task_vectors import TaskVector, check_vector, load_parameter_vector, parameter_vector

INITS = ('random', 'eye', 'zeros')


def _init_matrix(weight: torch.Tensor, init: str, scale: float) -> None:
    """``weight`` (out, in, ...): N(0, scale^2), ``scale * I`` on its first two dims, or zeros."""
    with torch.no_grad():
        if init == 'random':
            weight.normal_(0.0, scale)
        elif init == 'eye':
            weight.zero_()
            eye = torch.eye(weight.shape[0], weight.shape[1], dtype=weight.dtype, device=weight.device)
            weight.view(weight.shape[0], weight.shape[1], -1)[..., 0].copy_(scale * eye)
        else:
            weight.zero_()


@dataclasses.dataclass
class TAConfig(TunerConfig):
    init: str = 'random'  # 'random': N(0, init_scale^2) (ProLAD); 'eye': init_scale * I (TSA); 'zeros'
    init_scale: float = 1e-5

    def __post_init__(self):
        self.check_choice('init', INITS)


@register_tuner
class TA(Tuner):
    """Task adapter without normalisation: ``O(x) + alpha x``, alpha a 1x1 conv (stride of O) or a matrix.

    Merges into O: into a Linear's weight, or into the centre tap of a k x k conv with ``k // 2`` padding.
    """

    type_name = 'TA'
    config_cls = TAConfig
    placement = 'parallel'
    identity_at_init = False  # tiny, not zero, as TSA/ProLAD

    def __init__(self, config: TAConfig, op: OpInfo):
        super().__init__(config, op)
        self.check_op(op)
        self.stride = op.stride if op.kind == 'conv' else ()
        self.weight = nn.Parameter(torch.empty(op.out_features, op.in_features))  # (out, in)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_matrix(self.weight, self.config.init, self.config.init_scale)

    def reset(self) -> None:
        """A new episode re-draws the initialisation (as ProLAD/TSA)."""
        self.reset_parameters()

    @classmethod
    def default_targets(cls, spec):
        if spec.conv_ops:
            return list(spec.conv_ops)
        return [f'{spec.blocks}.attn.proj', f'{spec.blocks}.mlp.fc2']

    @classmethod
    def example_plan(cls, spec):
        return [{'type': cls.type_name, 'targets': cls.default_targets(spec), 'init_scale': 1e-2}]

    def check_op(self, op: OpInfo) -> None:
        if op.kind == 'linear' or (op.kind == 'conv' and len(op.kernel_size) == 2):
            return
        raise ValueError(f'TA needs a Linear or Conv2d op, but {op.name!r} is a {op.kind}; target e.g. '
                         'layer*.*.conv2 (ResNet) or blocks.*.attn.proj (ViT)')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H', W') on O's grid, or (..., in) -> (..., out)."""
        w = self.weight.to(x.dtype)
        if self.stride:
            return F.conv2d(x, w[:, :, None, None], stride=self.stride)
        return x @ w.t()

    def mergeable_reason(self, base: nn.Module) -> str | None:
        if isinstance(base, nn.Linear):
            return None
        if isinstance(base, nn.Conv2d):
            k, p = base.kernel_size, base.padding
            centred = not isinstance(p, str) and all(kk % 2 == 1 and pp == kk // 2 for kk, pp in zip(k, p))
            if centred and base.groups == 1 and base.dilation == (1, 1) and base.padding_mode == 'zeros':
                return None
            return 'TA merges only into a conv with odd kernel, k // 2 zero padding, no groups and no dilation'
        return f'TA merges into a Linear or Conv2d, not {type(base).__name__}'

    def _delta(self, base: nn.Module) -> tuple[torch.Tensor, tuple]:
        """The merged update and where it goes: the whole Linear weight or the conv's centre tap."""
        if isinstance(base, nn.Linear):
            return self.weight.to(base.weight.dtype), (slice(None),)
        kh, kw = base.kernel_size
        return self.weight.to(base.weight.dtype), (slice(None), slice(None), kh // 2, kw // 2)

    def merge(self, base: nn.Module) -> None:
        delta, where = self._delta(base)
        base.weight[where] += delta

    def task_vector(self) -> TaskVector:
        """alpha, its parameter."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


class EpisodeNorm(nn.Module):
    """Per-channel normalisation with the episode's own statistics, no affine (ProLAD's TAN input).

    Training (adapting on the support set): the batch's statistics, and a running estimate
    ``r <- (1 - momentum) r + momentum * batch`` (0.8 as the replication: it follows the support set as the
    adapters change it). Evaluation: the running estimate of this episode, or, if no batch was seen since
    :meth:`reset_statistics`, the batch's own statistics. Reset per episode.
    """

    def __init__(self, channels: int, channel_dim: int, momentum: float = 0.8, eps: float = 1e-7):
        super().__init__()
        self.channel_dim, self.momentum, self.eps = channel_dim, momentum, eps
        self.register_buffer('running_mean', torch.zeros(channels))
        self.register_buffer('running_var', torch.ones(channels))
        self.register_buffer('num_batches', torch.zeros((), dtype=torch.long))

    def reset_statistics(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: channels at ``channel_dim`` ((B, C, H, W) or (..., C)); same shape out."""
        if self.channel_dim == -1:
            return self._norm(x.reshape(-1, x.shape[-1])).view(x.shape)  # (M, C) rows = every token
        return self._norm(x)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches += 1
            return F.batch_norm(x, self.running_mean, self.running_var, training=True, momentum=self.momentum,
                                eps=self.eps)
        if int(self.num_batches) == 0:
            return F.batch_norm(x, None, None, training=True, eps=self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=self.eps)


@dataclasses.dataclass
class TANConfig(TunerConfig):
    groups: int = 8
    kernel_size: int | None = None  # None: O's kernel on conv ops (3 on ResNet), 1 on tokens
    init_scale: float = 1e-4
    momentum: float = 0.8
    eps: float = 1e-7

    def __post_init__(self):
        if self.groups < 1 or (self.kernel_size is not None and self.kernel_size % 2 == 0):
            raise ValueError(f'TAN needs groups >= 1 and an odd kernel_size, got {self.groups}, {self.kernel_size}')


@register_tuner
class TAN(Tuner):
    """Task adapter with normalisation: ``O(x) + W * EpisodeNorm(x)``, W grouped, parallel to O."""

    type_name = 'TAN'
    config_cls = TANConfig
    placement = 'parallel'
    identity_at_init = False
    per_sample = False  # EpisodeNorm: statistics of the batch (of each adapter's group in a mixed batch)

    def __init__(self, config: TANConfig, op: OpInfo):
        super().__init__(config, op)
        g = config.groups
        if op.in_features % g or op.out_features % g:
            raise ValueError(f'TAN groups={g} must divide the widths of {op.name!r} ({op.in_features} -> '
                             f'{op.out_features}); set `groups`')
        if op.kind == 'conv' and len(op.kernel_size) != 2:
            raise ValueError(f'TAN on a conv needs a Conv2d, {op.name!r} has kernel {op.kernel_size}')
        self.conv = op.kind == 'conv'
        self.stride = op.stride if self.conv else ()
        k = config.kernel_size or (max(op.kernel_size) if self.conv else 1)
        if not self.conv and k != 1:
            raise ValueError(f'TAN on tokens ({op.name!r}) is a grouped linear map; kernel_size must be 1')
        self.norm = EpisodeNorm(op.in_features, op.channel_dim, config.momentum, config.eps)
        self.weight = nn.Parameter(torch.empty(op.out_features, op.in_features // g, k, k))  # (out, in/g, k, k)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_matrix(self.weight, 'random', self.config.init_scale)

    def reset_statistics(self) -> None:
        self.norm.reset_statistics()

    def reset(self) -> None:
        """A new episode re-draws the weights and forgets the previous episode's statistics."""
        self.reset_parameters()
        self.reset_statistics()

    @classmethod
    def default_targets(cls, spec):
        return spec.conv_ops[-1] if spec.conv_ops else f'{spec.blocks}.mlp'

    @classmethod
    def example_plan(cls, spec):
        return [{'type': cls.type_name, 'targets': cls.default_targets(spec), 'init_scale': 1e-2}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H', W') on O's grid, or (..., C_in) -> (..., C_out)."""
        h = self.norm(x)
        w = self.weight.to(x.dtype)
        g = self.config.groups
        if self.conv:
            return F.conv2d(h, w, stride=self.stride, padding=w.shape[-1] // 2, groups=g)
        h = h.unflatten(-1, (g, -1))  # (..., g, in/g)
        y = torch.einsum('...gi,goi->...go', h, w.view(g, -1, w.shape[1]))  # (..., g, out/g)
        return y.flatten(-2)  # (..., out)

    def mergeable_reason(self, base: nn.Module) -> str | None:
        return 'TAN normalises its input with episode statistics at run time'

    def task_vector(self) -> TaskVector:
        """W, its parameter (the episode statistics are re-estimated per episode, not part of it)."""
        return parameter_vector(self)

    def load_task_vector(self, vector: TaskVector) -> None:
        load_parameter_vector(self, vector)


@dataclasses.dataclass
class PreClassifierAlignmentConfig(TunerConfig):
    pass


@register_tuner
class PreClassifierAlignment(Tuner):
    """``beta``: the features' d x d alignment map before the prototype classifier, identity-initialised.

    Attached after the op whose pooled output is the feature vector (the final norm on ViT/Swin, the last
    block on ResNet), where it equals ``beta @ pooled features`` for average pooling or a class token.
    """

    type_name = 'PreClassifierAlignment'
    config_cls = PreClassifierAlignmentConfig
    placement = 'sequential'

    def __init__(self, config: PreClassifierAlignmentConfig, op: OpInfo):
        super().__init__(config, op)
        self.channel_dim = op.channel_dim
        self.weight = nn.Parameter(torch.empty(op.out_features, op.out_features))  # (d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_matrix(self.weight, 'eye', 1.0)

    @classmethod
    def default_targets(cls, spec):
        return spec.feature_op or spec.final_norm

    @classmethod
    def example_plan(cls, spec):
        target = cls.default_targets(spec)
        return None if target is None else [{'type': cls.type_name, 'targets': target}]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: O's output, channels at ``channel_dim``."""
        out = y.movedim(self.channel_dim, -1) @ self.weight.t().to(y.dtype)  # (..., d)
        return out.movedim(-1, self.channel_dim)

    def mergeable_reason(self, base: nn.Module) -> str | None:
        return 'the alignment map is trained per episode and kept apart from the backbone'

    def task_vector(self) -> TaskVector:
        """``beta - I``: the change from the identity map."""
        eye = torch.eye(self.weight.shape[0], dtype=self.weight.dtype, device=self.weight.device)
        return {'weight': self.weight.detach() - eye}

    def load_task_vector(self, vector: TaskVector) -> None:
        check_vector('PreClassifierAlignment', {'weight': self.weight.shape}, vector)
        with torch.no_grad():
            self.weight.copy_(vector['weight'] + torch.eye(self.weight.shape[0], dtype=self.weight.dtype,
                                                           device=self.weight.device))
