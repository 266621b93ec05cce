"""Building blocks that several tuners share."""
import torch
from torch import nn


class BottleneckMLP:
    """Mixin for an ``nn.Module``: the bottleneck ``up(drop(act(down(x))))`` on attributes ``down``, ``act``,
    ``drop``, ``up`` (the state-dict keys every adapter-style tuner has always used)."""

    down: nn.Linear
    up: nn.Linear

    def build_bottleneck(self, d_in: int, hidden: int, d_out: int, act: nn.Module, dropout: float = 0.0) -> None:
        self.down = nn.Linear(d_in, hidden)
        self.act = act
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.Linear(hidden, d_out)

    def bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d_in) -> (..., d_out)."""
        return self.up(self.drop(self.act(self.down(x))))


def insert_tokens(x: torch.Tensor, tokens: list[torch.Tensor], n: int) -> torch.Tensor:
    """``[x[:, :n]; tokens...; x[:, n:]]``: tokens (B, L_i, C) inserted after the ``n`` prefix tokens of x (B, N, C)."""
    return torch.cat([x[:, :n], *tokens, x[:, n:]], dim=1)


class TaskConditioned:
    """What task-conditioned tuners share: they sit on the MLPs and the generic suites run them for two tasks."""

    example_tasks = ('semseg', 'depth')

    @classmethod
    def default_targets(cls, spec):
        return f'{spec.blocks}.mlp'

    @classmethod
    def example_plan(cls, spec):
        return [{'type': cls.type_name, 'targets': cls.default_targets(spec), 'tasks': list(cls.example_tasks)}]

    @classmethod
    def example_context(cls) -> dict:
        return {'task': cls.example_tasks[0]}
