"""``TunedOp``: a frozen operation O plus its named tuners, swapped into the backbone in place of O."""
import torch
from torch import nn

from . import carry
from .base import OpInfo, PromptTuner, Tuner
from .context import call_scratch
from .layers import insert_tokens
from .placement import PLACEMENTS, Placement


class TunedOp(nn.Module):
    """Applies the active tuners attached to ``base`` in their placements (:mod:`.placement`)::

        y = O([P_1; ...; P_k; x])          prompt tuners (P dropped from the output again, or carried on)
        y = O(x); s = B(x, y, s_prev)      a side tuner (alone on its op); the last op of its chain returns s
        y = y + U_1(x) + ... + U_m(x)      parallel tuners, on O's input
        y = S_n(...S_1(y))                 sequential tuners, in attach order

    ``base`` is always *called* (never re-implemented), so its own hooks, tuners and quantisation keep
    working; attention ops with key/value prompts go through the backbone descriptor's ``attend``,
    which calls the attention's own sub-layers. Extra positional/keyword arguments of O (timm's
    ``attn_mask``, Swin's window ``mask``) are passed through untouched, except that an attention mask is padded
    for prompt tokens inserted into O's sequence.

    Activation: a tuner acts when the op is enabled, its name is not switched off and it is not merged.
    Merging pushes what it changes in O onto a stack; unmerging pops it, last merged first, so any mix of
    tuners on one op restores O's weights bit for bit.
    """

    def __init__(self, base: nn.Module, op: OpInfo):
        super().__init__()
        self.base = base
        self.op = op
        self.tuners = nn.ModuleDict()
        self.enabled = True
        self.inactive: set[str] = set()
        self._merge_stack: list[tuple[str, dict[str, torch.Tensor | None]]] = []
        self._register_load_state_dict_pre_hook(self._load_base_keys)

    def add(self, name: str, tuner: Tuner) -> None:
        if name in self.tuners:
            raise ValueError(f'{self.op.name!r} already has a tuner named {name!r}; give the plan entry a `name`')
        tuner.check_op(self.op)
        if self.tuners and Placement.SIDE in {tuner.placement, *(t.placement for t in self.tuners.values())}:
            raise ValueError(f'a side tuner (Bypass) replaces the output of {self.op.name!r}; it cannot share the op '
                             'with other tuners (attach those to the ops inside it instead)')
        self.tuners[name] = tuner
        tuner.remember_initial_state()

    # activation -----------------------------------------------------------------------------------------------
    @property
    def merged(self) -> list[str]:
        """Names of the tuners folded into O's weights, in merge order."""
        return [name for name, _ in self._merge_stack]

    def is_active(self, name: str) -> bool:
        return self.enabled and name not in self.inactive and name not in self.merged

    def active(self) -> list[Tuner]:
        return [t for n, t in self.tuners.items() if self.is_active(n)]

    # forward ------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with call_scratch():
            by_placement = {p: [] for p in Placement}
            for t in self.active():
                by_placement[t.placement].append(t)
            outgoing: dict[str, torch.Tensor] = {}
            prompts = by_placement[Placement.PROMPT]
            if prompts:
                y = self._prompted(prompts, x, outgoing, *args, **kwargs)
            else:
                y = self.base(x, *args, **kwargs)
            for t in by_placement[Placement.SIDE]:
                y = self._side(t, x, y, outgoing)
            for t in by_placement[Placement.PARALLEL]:
                y = y + t(x)
            for t in by_placement[Placement.SEQUENTIAL]:
                y = t(y)
            return carry.attach(y, outgoing)

    def _side(self, t: Tuner, x: torch.Tensor, y: torch.Tensor, outgoing: dict) -> torch.Tensor:
        prev = None if t.first_in_chain else carry.require(x, t.chain_key, self.op.name)
        s = t.side(x, y, prev)
        if t.last_in_chain:
            return s
        outgoing[t.chain_key] = s
        return y

    def _prompted(self, prompts: list[PromptTuner], x: torch.Tensor, outgoing: dict, *args, **kwargs) -> torch.Tensor:
        B = x.shape[0]
        outs = [t.prompt(B, carry.require(x, t.chain_key, self.op.name) if t.carries and not t.first_in_chain else None)
                for t in prompts]
        if self.op.kind == 'attention':
            spec, ks, vs = self.op.spec, [], []
            for kind, value in outs:
                k, v = spec.project_kv(self.base, value) if kind == 'tokens' else value
                ks.append(k)
                vs.append(v)
            return spec.attend(self.base, x, torch.cat(ks, dim=2), torch.cat(vs, dim=2), *args, **kwargs)
        if any(kind != 'tokens' for kind, _ in outs):
            raise RuntimeError(f'key/value prefixes need an attention op, but {self.op.name!r} is {self.op.kind}')
        n = self.op.spec.num_prefix_tokens
        parts = [value.to(x.dtype) for _, value in outs]  # each (B, L_i, C), often an expanded view
        kwargs = _pad_masks(kwargs, n, sum(p.shape[1] for p in parts))
        y = self.base(insert_tokens(x, parts, n), *args, **kwargs)  # (B, n+L+N', C)
        start = n
        for t, p in zip(prompts, parts):
            if t.carries and not t.last_in_chain:
                outgoing[t.chain_key] = y[:, start:start + p.shape[1]]  # (B, L_i, C): the prompt after O
            start += p.shape[1]
        return torch.cat([y[:, :n], y[:, start:]], dim=1)

    # merge ------------------------------------------------------------------------------------------------
    def merge(self, name: str) -> None:
        """Fold tuner ``name`` into O, saving what it changes for :meth:`unmerge_last`."""
        tuner = self.tuners[name]
        if not PLACEMENTS[tuner.placement]['mergeable']:
            raise ValueError(f'{self.op.name}:{name} is a {tuner.placement.value} tuner, which cannot be merged')
        saved = {n: p.detach().clone() for n, p in self.base.named_parameters()}
        saved.update({n: None for n in _optional_params(self.base) if n not in saved})
        tuner.merge(self.base)
        self._merge_stack.append((name, saved))

    def unmerge_last(self) -> str:
        """Restore O's weights as they were before the last merge; returns the tuner's name."""
        name, saved = self._merge_stack.pop()
        for param_name, value in saved.items():
            owner, _, attr = param_name.rpartition('.')
            module = self.base.get_submodule(owner) if owner else self.base
            if value is None:
                setattr(module, attr, None)
            else:
                getattr(module, attr).copy_(value)
        return name

    def _load_base_keys(self, state_dict, prefix, *args) -> None:
        """Accept checkpoints of the untuned backbone: ``<op>.weight`` -> ``<op>.base.weight``."""
        for key in list(state_dict):
            if key.startswith(prefix) and not key.startswith(prefix + 'base.') and \
                    not key.startswith(prefix + 'tuners.'):
                state_dict[prefix + 'base.' + key[len(prefix):]] = state_dict.pop(key)

    def extra_repr(self) -> str:
        return f'op={self.op.name!r}, kind={self.op.kind}'


def _pad_masks(kwargs: dict, at: int, count: int) -> dict:
    """An ``attn_mask`` (..., N, N) for O's sequence, grown by ``count`` rows and columns at position ``at``: the
    inserted prompt tokens attend to, and are attended by, every token (0 for additive masks, True for boolean)."""
    mask = kwargs.get('attn_mask')
    if mask is None or count == 0:
        return kwargs
    fill = True if mask.dtype == torch.bool else 0.0
    rows = mask.new_full((*mask.shape[:-2], count, mask.shape[-1]), fill)
    mask = torch.cat([mask[..., :at, :], rows, mask[..., at:, :]], dim=-2)
    cols = mask.new_full((*mask.shape[:-1], count), fill)
    return {**kwargs, 'attn_mask': torch.cat([mask[..., :at], cols, mask[..., at:]], dim=-1)}


def _optional_params(module: nn.Module) -> list[str]:
    """Parameter slots registered as None (a Linear without bias), which a merge may fill."""
    return [f'{m}.{n}' if m else n for m, sub in module.named_modules()
            for n, p in sub._parameters.items() if p is None]
