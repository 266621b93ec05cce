"""Values that travel with the activations along a chain of tuned ops (VPT-shallow's prompt, the bypass's side
state), so that no tuner has to wrap a whole block stack.

A chain is the ops one plan entry matched, in order (``blocks.0`` .. ``blocks.11``). The tuned op of block i
returns the block's output with its tuner's value for the next block attached to the tensor itself; block i + 1
reads it from its input. Nothing is kept on a module (a deep copy of the model never meets a live graph) and
nothing outlives the tensors: code that iterates the blocks itself (timm's ``checkpoint_seq``,
``forward_intermediates``, ``prune_intermediate_layers``, non-reentrant checkpointing, which re-runs a block on the
same input tensor) hands the value on without knowing it. If something between two blocks makes a new tensor
(``x = x + pos``), the value is lost and the next op raises :class:`CarryLost` instead of computing silently
without it.
"""
import torch

_ATTR = '_petl_carried'


class CarryLost(RuntimeError):
    pass


def carried(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The values attached to ``x`` by the previous op of each chain (empty if none)."""
    return getattr(x, _ATTR, None) or {}


def attach(y: torch.Tensor, values: dict[str, torch.Tensor]) -> torch.Tensor:
    """``y`` with ``values`` attached for the next op (a fresh dict: the input's own values are never changed)."""
    if values:
        setattr(y, _ATTR, dict(values))
    return y


def require(values: dict[str, torch.Tensor], key: str, op_name: str) -> torch.Tensor:
    """The value of chain ``key`` among the ``values`` the previous op attached to this op's input
    (:func:`carried`); :class:`CarryLost` if there is none."""
    if key not in values:
        raise CarryLost(
            f'{op_name!r} expects the value of {key!r} from the previous op of its chain, but its input carries none: '
            'something between the two ops made a new tensor (e.g. `x = x + pos`), or the ops ran out of order, or '
            're-entrant checkpointing copied the input (use use_reentrant=False). Attach this tuner per op instead '
            '(e.g. VPT-deep) or call the chain directly one op after another.')
    return values[key]
