"""Arrow (Ostapenko et al. 2024, "Towards Modular LLMs by Building and Reusing a Library of LoRAs", arXiv
2405.11157): zero-shot routing of LoRA experts, no router training.

Per LoRA layer and expert ``e``, the prototype ``v_e`` is the top right singular vector of the expert's update
``dW_e = s B_e A_e`` (out, in) (``torch.linalg.svd(dW_e).Vh[0]``: the input direction the expert amplifies most;
its sign is arbitrary, so the logit takes the absolute value). For each token ``h`` of the layer's input::

    logit_e = |<h, v_e>| / T,   w = softmax over the top-k logits (0 elsewhere),   y = O(h) + sum_e w_e U_e(h)

with ``U_e`` the expert's LoRA update. Defaults: ``top_k=4`` (the paper's k) and ``temperature=1``; with fewer
experts than ``k`` every expert takes part.

Implementation: :class:`Arrow` is a context manager that runs the model with every adapter off
(``pv.tuner_context(adapter=None)``: each tuned op returns its frozen output ``O(h)``) and puts a forward hook on
every tuned op holding a LoRA of the experts, which adds the routed mixture of the experts' updates to that
output. Leaving the context removes the hooks and the model is as before. Only LoRA experts can be routed:
an adapter with another tuner type is refused.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

import petl_vision as pv
from petl_vision.tuners.lora import LoRA
from petl_vision.tuners.tuned_op import TunedOp


def lora_experts(model: nn.Module, adapters: Sequence[str]) -> dict[str, tuple[TunedOp, list[str], list[list[LoRA]]]]:
    """Per tuned op with a LoRA of any of ``adapters``: (op, the adapters that have one there, their LoRA tuners).
    Raises ValueError for a non-LoRA tuner of those adapters (Arrow routes LoRA experts only)."""
    known = pv.list_adapters(model)
    missing = [a for a in adapters if a not in known]
    if missing or not adapters:
        raise KeyError(f'Arrow needs LoRA adapters of this model; {missing or "none"} given, adapters: {known}')
    ops: dict[str, tuple[TunedOp, list[str], list[list[LoRA]]]] = {}
    for module in model.modules():
        if not isinstance(module, TunedOp):
            continue
        names, tuners = [], []
        for adapter in adapters:
            group = list(module.tuners[adapter].values()) if adapter in module.tuners else []
            bad = [t.tuner_name for t in group if not isinstance(t, LoRA)]
            if bad:
                raise ValueError(f'Arrow routes LoRA experts, but adapter {adapter!r} has {bad} on '
                                 f'{module.op.name!r}; build the experts with LoRA only (a LoRA on the head '
                                 'replaces a trainable head)')
            if group:
                names.append(adapter)
                tuners.append(group)
        if names:
            ops[module.op.name] = (module, names, tuners)
    if not ops:
        raise ValueError(f'adapters {list(adapters)} hold no LoRA tuner: nothing for Arrow to route')
    return ops


@torch.no_grad()
def arrow_prototype(delta_weight: torch.Tensor) -> torch.Tensor:
    """The top right singular vector (in,) of an update ``dW`` (out, in), unit norm (sign arbitrary)."""
    return torch.linalg.svd(delta_weight.double(), full_matrices=False).Vh[0].to(delta_weight.dtype)


def arrow_weights(h: torch.Tensor, prototypes: torch.Tensor, top_k: int = 4, temperature: float = 1.0
                  ) -> torch.Tensor:
    """Per token of ``h`` (..., in), weights (..., N) over the N experts of ``prototypes`` (N, in):
    softmax of ``|<h, v_e>| / temperature`` over the top-k experts, 0 for the others."""
    logits = (h @ prototypes.t().to(h.dtype)).abs() / temperature
    k = min(top_k, prototypes.shape[0])
    top, idx = logits.topk(k, dim=-1)
    return torch.zeros_like(logits).scatter(-1, idx, F.softmax(top, dim=-1))


class Arrow:
    """Zero-shot routing of LoRA experts ``adapters``; use as ``with Arrow(model, names) as arrow: y = model(x)``.

    Args:
        top_k: experts mixed per token (the paper's 4); temperature: of the softmax over their logits.
        record: keep each op's per-token top expert of the last forward in :attr:`top_expert` (op name -> (...,)
            indices into :attr:`adapters`), for :meth:`routing_accuracy`.
    """

    def __init__(self, model: nn.Module, adapters: Sequence[str], top_k: int = 4, temperature: float = 1.0,
                 record: bool = False) -> None:
        if top_k < 1 or temperature <= 0:
            raise ValueError(f'Arrow needs top_k >= 1 and temperature > 0, got {top_k}, {temperature}')
        self.model, self.adapters = model, list(adapters)
        self.top_k, self.temperature, self.record = top_k, temperature, record
        self.experts = lora_experts(model, self.adapters)
        self.prototypes = {name: self._prototypes(tuners) for name, (_, _, tuners) in self.experts.items()}
        self.top_expert: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._context = None

    @staticmethod
    def _prototypes(tuners: list[list[LoRA]]) -> torch.Tensor:
        return torch.stack([arrow_prototype(sum(t.delta_weight() for t in group)) for group in tuners])

    def _hook(self, name: str):
        _, names, tuners = self.experts[name]
        columns = torch.tensor([self.adapters.index(a) for a in names])

        def add_experts(module, args, output):
            h = args[0]
            w = arrow_weights(h, self.prototypes[name].to(h.device), self.top_k, self.temperature)
            if self.record:
                self.top_expert[name] = columns.to(h.device)[w.argmax(dim=-1)]
            update = sum(w[..., e:e + 1] * sum(t(h) for t in group) for e, group in enumerate(tuners))
            return output + update

        return add_experts

    def __enter__(self) -> Arrow:
        if self._handles:
            raise RuntimeError('this Arrow is already active; leave its context before entering it again')
        self.top_expert = {}
        self._handles = [op.register_forward_hook(self._hook(name)) for name, (op, _, _) in self.experts.items()]
        self._context = pv.tuner_context(adapter=None)  # every op: its frozen output; the hooks add the experts
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        context, self._context = self._context, None
        context.__exit__(*exc)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output on ``x`` under Arrow routing (enters and leaves the context)."""
        with self:
            return self.model(x)

    def routing_accuracy(self, tasks: torch.Tensor) -> float:
        """After a recorded forward of a batch: how often a token's top expert is its sample's task ``tasks`` (B,)
        (indices into :attr:`adapters`), over every token of every routed op."""
        if not self.top_expert:
            raise RuntimeError('no recorded forward: build Arrow(..., record=True) and run the model in it first')
        hits = [(top == tasks.to(top.device).view(-1, *[1] * (top.ndim - 1))).float().reshape(-1)
                for top in self.top_expert.values()]
        return float(torch.cat(hits).mean())
