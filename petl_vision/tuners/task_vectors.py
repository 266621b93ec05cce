"""Task vectors: a tuner seen as tensors in a space where sums, averages and signs mean something.

Every tuner that can be mixed in weight space defines (``docs/mixing.md``):

- ``task_vector() -> {name: tensor}``: its point in that space (detached copies), e.g. LoRA's dense update
  ``dW = s B A`` (out, in), never A and B apart (their average adds cross terms ``B_i A_j``); SSF's
  ``(scale - 1, shift)``; a bottleneck adapter's parameters; VPT's tokens.
- ``load_task_vector(vector)``: the way back, in place, exact; tuners that cannot hold every point of their space
  (LoRA of rank r) raise and name the tuner that can (``rebuild_entry``).

and may override (defaults here):

- ``task_space() -> str``: tuners with the same space on the same op mix entry by entry (LoRA of any rank and
  :class:`~.dense_delta.DenseDelta` share :data:`DENSE_DELTA`); default: the type and the config fields that
  change what the tensors mean (all but ``targets``, ``name``, ``dropout``).
- ``rebuild_entry() -> dict``: the plan entry (no ``targets``/``name``) of a tuner that holds any vector of this
  space; default: the tuner's own type and config.

The functions below are the default implementations and the entry points (:func:`task_vector_of`, ...) that give
a clear error for tuners without a task vector.
"""
import json

import torch
from torch import nn

TaskVector = dict[str, torch.Tensor]
DENSE_DELTA = 'dense_delta'  # (out, in) weight updates of a Linear: LoRA (any rank), DenseDelta
_NOT_IN_SPACE = ('targets', 'name', 'dropout')


def parameter_vector(module: nn.Module) -> TaskVector:
    """The default task vector: detached copies of the module's parameters, by name."""
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def load_parameter_vector(module: nn.Module, vector: TaskVector) -> None:
    """Copy ``vector`` into the module's parameters (same names and shapes, else a clear error; nothing copied)."""
    params = dict(module.named_parameters())
    check_vector(type(module).__name__, {n: p.shape for n, p in params.items()}, vector)
    with torch.no_grad():
        for n, t in vector.items():
            params[n].copy_(t)


def check_vector(what: str, shapes: dict[str, torch.Size], vector: TaskVector) -> None:
    missing, unexpected = sorted(set(shapes) - set(vector)), sorted(set(vector) - set(shapes))
    if missing or unexpected:
        raise ValueError(f'{what} task vector does not fit: missing {missing}, unexpected {unexpected}')
    bad = [f'{n} {tuple(vector[n].shape)} != {tuple(s)}' for n, s in shapes.items() if vector[n].shape != s]
    if bad:
        raise ValueError(f'{what} task vector has wrong shapes: {", ".join(bad)}')


def task_vector_of(tuner: nn.Module) -> TaskVector:
    """``tuner.task_vector()``, or a clear error for a tuner type without one."""
    method = getattr(tuner, 'task_vector', None)
    if method is None:
        raise TypeError(f'{type(tuner).__name__} on {getattr(tuner, "op_name", "?")!r} defines no task vector (the '
                        'space where weight-space mixing is defined); mix it in output space instead '
                        "(set_adapter(model, [names], weights=...)), or add task_vector/load_task_vector to the "
                        'tuner (docs/mixing.md)')
    return method()


def space_of(tuner: nn.Module) -> str:
    """The tuner's task space: two tuners on one op mix entry by entry only if their spaces are equal."""
    method = getattr(tuner, 'task_space', None)
    if method is not None:
        return method()
    config = {k: v for k, v in tuner.config.to_dict().items() if k not in _NOT_IN_SPACE}
    return f'{tuner.type_name} {json.dumps(config, sort_keys=True)}'


def rebuild_entry_of(tuner: nn.Module) -> dict:
    """The plan entry (without ``targets`` and ``name``) of a tuner that can hold any vector of this tuner's space."""
    method = getattr(tuner, 'rebuild_entry', None)
    if method is not None:
        return method()
    config = {k: v for k, v in tuner.config.to_dict().items() if k not in ('targets', 'name')}
    return {'type': tuner.type_name, **config}


def load_task_vector_into(tuner: nn.Module, vector: TaskVector) -> None:
    method = getattr(tuner, 'load_task_vector', None)
    if method is None:
        raise TypeError(f'{type(tuner).__name__} cannot be rebuilt from a task vector (no load_task_vector)')
    method(vector)


# LoRA's way back ---------------------------------------------------------------------------------------------
def low_rank(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Best rank-``rank`` factors of ``delta`` (out, in) in the Frobenius norm (Eckart-Young):
    ``delta ~ B A`` with B (out, k) = U_k sqrt(S_k), A (k, in) = sqrt(S_k) V_k^T (balanced, as LoRA trains them).

    Returns (B, A, error, relative): ``error = ||delta - B A||_F = sqrt(sum_{i > k} s_i^2)`` and
    ``relative = error / ||delta||_F`` (0 for a zero delta).
    """
    out, inp = delta.shape
    if not 1 <= rank <= min(out, inp):
        raise ValueError(f'SVD rank must be in 1..{min(out, inp)} for a ({out}, {inp}) update, got {rank}')
    U, S, Vh = torch.linalg.svd(delta.double(), full_matrices=False)
    root = S[:rank].sqrt()
    B = (U[:, :rank] * root).to(delta.dtype)  # (out, k)
    A = (root[:, None] * Vh[:rank]).to(delta.dtype)  # (k, in)
    error = float(S[rank:].square().sum().sqrt())
    norm = float(S.square().sum().sqrt())
    return B, A, error, error / norm if norm > 0 else 0.0


def load_lora_factors(lora: nn.Module, B: torch.Tensor, A: torch.Tensor) -> None:
    """Set a whole-output LoRA (``parts=None``) of rank k so that its ``delta_weight()`` is ``B A``."""
    if lora.config.parts or lora.lora_A.shape != A.shape:
        raise ValueError(f'LoRA on {lora.op_name!r} must have parts=None and rank {A.shape[0]} to hold these factors '
                         f'(has parts={lora.config.parts}, A {tuple(lora.lora_A.shape)})')
    with torch.no_grad():
        lora.lora_A.copy_(A)
        lora.lora_B[0].copy_(B / lora.scale)
