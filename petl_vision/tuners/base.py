"""Tuner base classes and the description of the operation a tuner is attached to.

Placements (:mod:`.placement`): ``parallel`` ``O(x) + U(x)``, ``sequential`` ``U(O(x))``, ``prompt``
``O([P; x])`` and ``side`` (a side network along a chain of ops, Res-Tuning-Bypass).
"""
import dataclasses
from typing import ClassVar

import torch
from torch import nn

from .config import TunerConfig
from .descriptor import BackboneSpec
from .placement import Placement

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclasses.dataclass
class OpInfo:
    """What a tuner may know about the frozen operation O it is attached to.

    ``kind`` is one of ``linear``, ``conv``, ``norm``, ``attention``, ``module``; ``channel_dim`` is the
    dimension of O's output holding the channels (-1 for token layouts, 1 for NCHW convs / BatchNorm).
    """

    name: str
    kind: str
    in_features: int
    out_features: int
    channel_dim: int
    spec: BackboneSpec
    num_heads: int | None = None
    index: int = 0  # position of this op among the ops its plan entry matched (chains: VPT-shallow, bypass)
    count: int = 1  # how many ops the entry matched
    kernel_size: tuple[int, ...] = ()  # conv ops: O's kernel and stride (a parallel conv tuner matches O's grid)
    stride: tuple[int, ...] = ()

    @classmethod
    def of(cls, name: str, module: nn.Module, spec: BackboneSpec) -> 'OpInfo':
        if isinstance(module, _CONTAINERS):
            raise ValueError(f'{name!r} is a {type(module).__name__} of {len(module)} modules: a tuner cannot wrap a '
                             "container, because code that iterates it (timm's checkpoint_seq, forward_intermediates, "
                             f'prune_intermediate_layers) would run its blocks without the tuner; target its blocks '
                             f'instead ({name}.*)')
        if isinstance(module, nn.Linear):
            return cls(name, 'linear', module.in_features, module.out_features, -1, spec)
        if isinstance(module, _CONVS):
            return cls(name, 'conv', module.in_channels, module.out_channels, 1, spec,
                       kernel_size=tuple(module.kernel_size), stride=tuple(module.stride))
        if isinstance(module, nn.LayerNorm):
            n = module.normalized_shape[-1]
            return cls(name, 'norm', n, n, -1, spec)
        if isinstance(module, nn.GroupNorm):
            return cls(name, 'norm', module.num_channels, module.num_channels, 1, spec)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return cls(name, 'norm', module.num_features, module.num_features, 1, spec)
        layers = [m for m in module.modules() if isinstance(m, (nn.Linear, *_CONVS))]
        if not layers:
            raise ValueError(f'cannot attach a tuner to {name!r} ({type(module).__name__}): it has no Linear or '
                             'Conv layer to take its width from; target a Linear, norm or a module containing one')
        first, last = layers[0], layers[-1]
        d_in = getattr(first, 'in_features', None) or first.in_channels
        d_out = getattr(last, 'out_features', None) or last.out_channels
        if spec.is_attention(module):
            return cls(name, 'attention', d_in, d_out, -1, spec, num_heads=spec.num_heads(module))
        return cls(name, 'module', d_in, d_out, spec.channel_dim, spec)


class Tuner(nn.Module):
    """A trainable module attached to a frozen operation.

    Subclasses set ``type_name`` (the plan's ``type``), ``config_cls``, ``placement`` and implement ``forward``:
    for ``parallel`` it returns the (scaled) update ``U(x)`` added to ``O(x)``, for ``sequential``
    the transformed output ``U(O(x))``. Prompt tuners implement ``prompt``, side tuners ``side`` instead.
    Mergeable tuners implement ``merge(base)``; unmerging is the core's (``TunedOp`` restores what each merge
    changed, last merged first), so no tuner writes an inverse. ``reset()`` returns a tuner to its state when it
    was attached (few-shot episodes); override it where a method re-draws its initialisation instead.
    """

    type_name: ClassVar[str]
    config_cls: ClassVar[type[TunerConfig]] = TunerConfig
    placement: Placement = Placement.PARALLEL
    # the tuned model equals the frozen one at initialisation (checked by the generic suite)
    identity_at_init: ClassVar[bool] = True
    # the output for one sample does not depend on the other samples of its batch (False: batch statistics, TAN)
    per_sample: ClassVar[bool] = True
    # the op's output keeps its shape (False: tuners that insert tokens, DAPT's internal prompt, IDPT)
    keeps_shape: ClassVar[bool] = True
    # keys this tuner reads from the conditioning context (``tuner_context(task=...)``); a model runs the
    # backbone once per value where any tuner reads ``task``
    context_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.placement = Placement.of(cls.placement, cls.__name__)

    def __init__(self, config: TunerConfig, op: OpInfo):
        super().__init__()
        self.config = config
        self.op_name = op.name
        self.tuner_name = config.name or getattr(type(self), 'type_name', type(self).__name__).lower()
        self.adapter = 'default'  # set when attached (TunedOp.add)
        self.placement = Placement.of(getattr(config, 'placement', None) or type(self).placement, type(self).__name__)
        self.chain_index, self.chain_length = op.index, op.count
        self._initial_state: dict[str, torch.Tensor] | None = None

    @property
    def chain_key(self) -> str:
        """Identifies the chain of ops this tuner's plan entry matched (the carried values of :mod:`.carry`)."""
        return f'{self.adapter}/{self.tuner_name}'

    @property
    def first_in_chain(self) -> bool:
        return self.chain_index == 0

    @property
    def last_in_chain(self) -> bool:
        return self.chain_index == self.chain_length - 1

    def remember_initial_state(self) -> None:
        """Called when attached: what :meth:`reset` returns to."""
        self._initial_state = {k: v.detach().clone() for k, v in self.state_dict().items()}

    def reset(self) -> None:
        """Return to the state at attach time (parameters and buffers)."""
        if self._initial_state is None:
            raise RuntimeError(f'{type(self).__name__} on {self.op_name!r} was never attached; nothing to reset to')
        with torch.no_grad():
            self.load_state_dict(self._initial_state)

    @classmethod
    def default_targets(cls, spec: BackboneSpec) -> str | list[str]:
        """Where a plan entry without ``targets`` attaches this tuner."""
        raise NotImplementedError(f'{cls.__name__} must define default_targets(spec)')

    @classmethod
    def example_plan(cls, spec: BackboneSpec) -> list[dict] | None:
        """The plan the generic test suite runs for this tuner on ``spec``; None where it does not apply."""
        return [{'type': cls.type_name, 'targets': cls.default_targets(spec)}]

    @classmethod
    def example_context(cls) -> dict:
        """Conditioning values the generic test suite sets around the forward pass (see ``context_keys``)."""
        return {}

    def bind(self, find_tuner) -> None:
        """Called once attached; ``find_tuner(op_name, tuner_name)`` looks up another tuner of the model
        (DAPT's internal prompt reads its block's adapter); ``find_tuner.shared(key, factory)`` gets or creates
        a weight source shared by several tuners (a hypernetwork, ``sources.py``)."""

    def check_op(self, op: OpInfo) -> None:
        """Raise a clear error if this tuner cannot be attached to ``op``."""

    def mergeable_reason(self, base: nn.Module) -> str | None:
        """None if the tuner can be folded into ``base``'s weights, else why not."""
        return f'{type(self).__name__} adds computation that has no equivalent in the frozen weights'

    def merge(self, base: nn.Module) -> None:
        """Fold this tuner into ``base``'s weights in place (``TunedOp`` saved them first, for unmerge)."""
        raise RuntimeError(self.mergeable_reason(base))


class PromptTuner(Tuner):
    """A tuner that feeds extra tokens into O. ``prompt(batch, carried)`` returns one of:

    - ``('tokens', P)``: P (B, L, C) tokens, inserted into a token sequence after the prefix tokens (or,
      for an attention op, projected to keys/values by the frozen projection);
    - ``('kv', (K, V))``: keys and values (B, heads, L, head_dim), only for attention ops.

    A prompt with ``carries = True`` (VPT-shallow) is not dropped after O: O's output at the prompt positions is
    handed to the same tuner on the next op of its chain as ``carried`` (:mod:`.carry`), so the prompt flows
    through the blocks while every block's visible output keeps its length.
    """

    placement = Placement.PROMPT
    carries: bool = False

    def prompt(self, batch: int, carried: torch.Tensor | None = None
               ) -> tuple[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def mergeable_reason(self, base: nn.Module) -> str | None:
        return 'prompt tokens change the attention inputs and cannot be folded into weights'


class ParameterSelection:
    """A 'tuner' that trains a subset of the backbone's own parameters (BitFit, full fine-tuning).

    Nothing is attached; ``selects(name, param)`` picks the parameters to unfreeze. Already merged by
    construction.
    """

    type_name: ClassVar[str]
    config_cls: ClassVar[type[TunerConfig]] = TunerConfig
    identity_at_init: ClassVar[bool] = True

    def __init__(self, config: TunerConfig):
        self.config = config

    @classmethod
    def default_targets(cls, spec: BackboneSpec) -> None:
        return None

    @classmethod
    def example_plan(cls, spec: BackboneSpec) -> list[dict]:
        return [{'type': cls.type_name}]

    def selects(self, name: str, param: nn.Parameter) -> bool:
        raise NotImplementedError
