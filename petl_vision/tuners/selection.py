"""Parameter selections: train a subset of the backbone's own weights.

- BitFit (Ben Zaken et al. 2022): every bias term (102,912 on ViT-B/16).
- Full: every parameter (the full fine-tuning baseline).
"""
import dataclasses

from torch import nn

from .base import ParameterSelection
from .config import TunerConfig
from .patterns import as_patterns, matches_prefix
from .registry import register_tuner


@dataclasses.dataclass
class SelectionConfig(TunerConfig):
    """``targets`` optionally restricts the selection to parameters under these module globs."""


class _Selection(ParameterSelection):
    config_cls = SelectionConfig

    def in_targets(self, name: str) -> bool:
        patterns = as_patterns(self.config.targets)
        return not patterns or matches_prefix(name, patterns)


@register_tuner
class BitFit(_Selection):
    type_name = 'BitFit'

    def selects(self, name: str, param: nn.Parameter) -> bool:
        return name.endswith('.bias') and self.in_targets(name)


@register_tuner
class Full(_Selection):
    type_name = 'Full'

    def selects(self, name: str, param: nn.Parameter) -> bool:
        return self.in_targets(name)
