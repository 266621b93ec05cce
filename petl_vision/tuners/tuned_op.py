"""``TunedOp``: a frozen operation O plus the tuners of every named adapter on it, swapped into the backbone in
place of O."""
import dataclasses

import torch
from torch import nn

from . import carry
from .base import OpInfo, PromptTuner, Tuner
from .context import call_scratch, tuner_context
from .layers import insert_tokens
from .placement import PLACEMENTS, Placement
from .routing import BASE, Route, route


@dataclasses.dataclass
class AdapterSet:
    """The adapters of one model, shared by all its tuned ops: their names in attach order, which act by default
    (``set_adapter``) and with which output-space weights."""

    names: list[str] = dataclasses.field(default_factory=list)
    active: list[str] = dataclasses.field(default_factory=list)
    weights: list[float] | None = None


class TunedOp(nn.Module):
    """Applies the active tuners attached to ``base`` in their placements (:mod:`.placement`)::

        y = O([P_1; ...; P_k; x])          prompt tuners (P dropped from the output again, or carried on)
        y = O(x); s = B(x, y, s_prev)      a side tuner (alone on its op); the last op of its chain returns s
        y = y + U_1(x) + ... + U_m(x)      parallel tuners, on O's input
        y = S_n(...S_1(y))                 sequential tuners, in attach order

    Tuners are grouped by adapter (``tuners[adapter][name]``). With several adapters acting (``docs/adapters.md``)::

        parallel:    y = O(x) + sum_a w_a * U_a(x)
        sequential:  y = y + sum_a w_a * (S_a(y) - y)
        hard routing (one adapter per sample): each group of samples through its own adapter's tuners

    ``base`` is always *called* (never re-implemented), so its own hooks, tuners and quantisation keep
    working; attention ops with key/value prompts go through the backbone descriptor's ``attend``,
    which calls the attention's own sub-layers. Extra positional/keyword arguments of O (timm's
    ``attn_mask``, Swin's window ``mask``) are passed through, an attention mask padded for prompt tokens inserted
    into O's sequence.

    Activation: a tuner acts when the op is enabled, its name is not switched off, it is not merged and its adapter
    is routed to. Merging pushes what it changes in O onto a stack; unmerging pops it, last merged first, so any
    mix of tuners on one op restores O's weights bit for bit.
    """

    def __init__(self, base: nn.Module, op: OpInfo, adapters: AdapterSet):
        super().__init__()
        self.base = base
        self.op = op
        self.tuners = nn.ModuleDict()  # adapter -> ModuleDict(name -> Tuner)
        self.adapter_set = adapters
        self.enabled = True
        self.inactive: set[str] = set()
        self._merge_stack: list[tuple[str, str, dict[str, torch.Tensor | None]]] = []
        self._register_load_state_dict_pre_hook(self._load_base_keys)

    def add(self, adapter: str, name: str, tuner: Tuner) -> None:
        group = self.tuners[adapter] if adapter in self.tuners else nn.ModuleDict()
        if name in group:
            raise ValueError(f'{self.op.name!r} already has a tuner named {name!r} in adapter {adapter!r}; give the '
                             'plan entry a `name`')
        tuner.check_op(self.op)
        placements = {tuner.placement, *(t.placement for t in group.values())}
        if group and Placement.SIDE in placements:
            raise ValueError(f'a side tuner (Bypass) replaces the output of {self.op.name!r}; it cannot share the op '
                             'with other tuners (attach those to the ops inside it instead)')
        tuner.adapter = adapter
        group[name] = tuner
        self.tuners[adapter] = group
        tuner.remember_initial_state()

    def remove_adapter(self, adapter: str) -> None:
        if any(a == adapter for a, _, _ in self._merge_stack):
            raise RuntimeError(f'{self.op.name}: adapter {adapter!r} is merged; call unmerge_tuners(model) first')
        del self.tuners[adapter]

    def all_tuners(self) -> list[tuple[str, str, Tuner]]:
        """(adapter, name, tuner) for every tuner on this op, in attach order."""
        return [(a, n, t) for a, group in self.tuners.items() for n, t in group.items()]

    # activation -----------------------------------------------------------------------------------------------
    @property
    def merged(self) -> list[tuple[str, str]]:
        """(adapter, name) of the tuners folded into O's weights, in merge order."""
        return [(a, n) for a, n, _ in self._merge_stack]

    def is_active(self, adapter: str, name: str) -> bool:
        return self.enabled and name not in self.inactive and (adapter, name) not in self.merged

    def active(self, adapter: str) -> list[Tuner]:
        group = self.tuners[adapter] if adapter in self.tuners else {}  # noqa: SIM401 (ModuleDict has no get)
        return [t for n, t in group.items() if self.is_active(adapter, n)]

    # forward ------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with call_scratch():
            r = route(x.shape[0], self.adapter_set.active, self.adapter_set.weights, self.adapter_set.names,
                      x.device)
            incoming = carry.carried(x)
            if r.single is not None:
                y, outgoing = self._run(self._active_of(r.single), x, incoming, *args, **kwargs)
            elif r.weights is not None:
                y, outgoing = self._soft(r, x, incoming, *args, **kwargs)
            else:
                y, outgoing = self._hard(r, x, incoming, *args, **kwargs)
            return carry.attach(y, outgoing)

    def _active_of(self, adapter: str) -> list[Tuner]:
        return [] if adapter == BASE else self.active(adapter)

    def _run(self, tuners: list[Tuner], x: torch.Tensor, incoming: dict, *args, **kwargs
             ) -> tuple[torch.Tensor, dict]:
        """One set of tuners on every row of x; returns (output, values for the next op of each chain)."""
        outgoing: dict[str, torch.Tensor] = {}
        prompts = [t for t in tuners if t.placement == Placement.PROMPT]
        y = self._prompted(prompts, x, incoming, outgoing, *args, **kwargs) if prompts else \
            self.base(x, *args, **kwargs)
        for t in tuners:
            if t.placement == Placement.SIDE:
                y = self._side(t, x, y, incoming, outgoing)
        for t in tuners:
            if t.placement == Placement.PARALLEL:
                y = y + t(x)
        for t in tuners:
            if t.placement == Placement.SEQUENTIAL:
                y = t(y)
        return y, outgoing

    def _hard(self, r: Route, x: torch.Tensor, incoming: dict, *args, **kwargs) -> tuple[torch.Tensor, dict]:
        """Each group of rows through its own adapter. O runs once on all rows unless a group needs a prompt, a
        side network or inserts tokens (then O runs per group, on that group's rows and arguments)."""
        groups = {a: (idx, self._active_of(a)) for a, idx in r.groups.items()}
        if any(t.placement in (Placement.PROMPT, Placement.SIDE) or not t.keeps_shape
               for _, ts in groups.values() for t in ts):
            return self._split(groups, x, incoming, *args, **kwargs)
        y = self.base(x, *args, **kwargs)
        batched = _batched_update(groups, x)
        if batched is not None:
            return y + batched, {}
        for _, (idx, tuners) in groups.items():
            par = [t for t in tuners if t.placement == Placement.PARALLEL]
            seq = [t for t in tuners if t.placement == Placement.SEQUENTIAL]
            if not par and not seq:
                continue
            rows = y[idx]
            if par:
                xs = x[idx]
                rows = rows + sum(t(xs) for t in par)
            for t in seq:
                rows = t(rows)
            _same_shape(self.op.name, y, rows)
            y = y.index_copy(0, idx, rows)
        return y, {}

    def _split(self, groups: dict, x: torch.Tensor, incoming: dict, *args, **kwargs) -> tuple[torch.Tensor, dict]:
        rows = x.shape[0]
        parts, outgoing = [], {}
        for adapter, (idx, tuners) in groups.items():
            keys = {t.chain_key for t in tuners}
            mine = {k: v for k, v in incoming.items() if k in keys}
            sub_args = [_rows_of(a, idx, rows) for a in args]
            sub_kwargs = {k: _rows_of(v, idx, rows) for k, v in kwargs.items()}
            with tuner_context(adapter=adapter):  # ops inside O route this group's rows the same way
                y_g, out_g = self._run(tuners, x[idx], mine, *sub_args, **sub_kwargs)
            parts.append((idx, y_g))
            outgoing.update(out_g)
        first = parts[0][1]
        y = first.new_empty((rows, *first.shape[1:]))
        for idx, y_g in parts:
            _same_shape(self.op.name, y, y_g)
            y = y.index_copy(0, idx, y_g)
        return y, outgoing

    def _soft(self, r: Route, x: torch.Tensor, incoming: dict, *args, **kwargs) -> tuple[torch.Tensor, dict]:
        """Output-space mixing: every adapter's update on every row, weighted per row."""
        tuners = {a: self._active_of(a) for a in r.adapters}
        bad = [f'{a}:{t.tuner_name}' for a, ts in tuners.items() for t in ts
               if t.placement in (Placement.PROMPT, Placement.SIDE) or not t.keeps_shape]
        if bad:
            raise ValueError(f'{self.op.name}: weighted mixing adds the adapters\' updates, but {bad} change O\'s '
                             'inputs (prompts), replace its output (side networks) or insert tokens; route those per '
                             'sample (tuner_context(adapter=[...])) or mix them in weight space')
        y = self.base(x, *args, **kwargs)
        mixed = _mixed_update(tuners, x, r.weights)
        if mixed is not None:
            return y + mixed, {}
        shape = (-1,) + (1,) * (y.ndim - 1)
        w = {a: r.weights[:, j].to(y.dtype).view(shape) for j, a in enumerate(tuners)}
        for a, ts in tuners.items():
            for t in ts:
                if t.placement == Placement.PARALLEL:
                    y = y + w[a] * t(x)
        y0 = y
        for a, ts in tuners.items():
            seq = [t for t in ts if t.placement == Placement.SEQUENTIAL]
            if seq:
                s = y0
                for t in seq:
                    s = t(s)
                y = y + w[a] * (s - y0)  # the adapter's residual delta, mixed
        return y, {}

    def _side(self, t: Tuner, x: torch.Tensor, y: torch.Tensor, incoming: dict, outgoing: dict) -> torch.Tensor:
        prev = None if t.first_in_chain else carry.require(incoming, t.chain_key, self.op.name)
        s = t.side(x, y, prev)
        if t.last_in_chain:
            return s
        outgoing[t.chain_key] = s
        return y

    def _prompted(self, prompts: list[PromptTuner], x: torch.Tensor, incoming: dict, outgoing: dict,
                  *args, **kwargs) -> torch.Tensor:
        B = x.shape[0]
        outs = [t.prompt(B, carry.require(incoming, t.chain_key, self.op.name) if t.carries and not t.first_in_chain
                         else None) for t in prompts]
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
    def merge(self, adapter: str, name: str) -> None:
        """Fold tuner ``name`` of ``adapter`` into O, saving what it changes for :meth:`unmerge_last`."""
        tuner = self.tuners[adapter][name]
        if not PLACEMENTS[tuner.placement]['mergeable']:
            raise ValueError(f'{self.op.name}:{name} is a {tuner.placement.value} tuner, which cannot be merged')
        saved = {n: p.detach().clone() for n, p in self.base.named_parameters()}
        saved.update({n: None for n in _optional_params(self.base) if n not in saved})
        tuner.merge(self.base)
        self._merge_stack.append((adapter, name, saved))

    def unmerge_last(self) -> tuple[str, str]:
        """Restore O's weights as they were before the last merge; returns its (adapter, name)."""
        adapter, name, saved = self._merge_stack.pop()
        for param_name, value in saved.items():
            owner, _, attr = param_name.rpartition('.')
            module = self.base.get_submodule(owner) if owner else self.base
            if value is None:
                setattr(module, attr, None)
            else:
                getattr(module, attr).copy_(value)
        return adapter, name

    def _load_base_keys(self, state_dict, prefix, *args) -> None:
        """Accept checkpoints of the untuned backbone: ``<op>.weight`` -> ``<op>.base.weight``."""
        for key in list(state_dict):
            if key.startswith(prefix) and not key.startswith(prefix + 'base.') and \
                    not key.startswith(prefix + 'tuners.'):
                state_dict[prefix + 'base.' + key[len(prefix):]] = state_dict.pop(key)

    def extra_repr(self) -> str:
        return f'op={self.op.name!r}, kind={self.op.kind}'


def _batched_update(groups: dict, x: torch.Tensor) -> torch.Tensor | None:
    """One batched update for a mixed batch where every group has at most one tuner, all of one class that can
    stack them (``routed``: LoRA); None otherwise."""
    tuners = _one_each([ts for _, ts in groups.values() if ts], 'routed')
    if tuners is None:
        return None
    index = torch.full((x.shape[0],), len(tuners), dtype=torch.long, device=x.device)  # the zero update by default
    k = 0
    for idx, ts in groups.values():
        if ts:
            index[idx] = k
            k += 1
    return type(tuners[0]).routed(tuners, x, index)


def _mixed_update(tuners: dict[str, list[Tuner]], x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor | None:
    """One fused update for a soft-routed batch where every adapter has exactly one tuner here, all of one class
    that can concatenate them (``mixed``: LoRA); None otherwise (then each adapter's update is added apart)."""
    ones = _one_each(list(tuners.values()), 'mixed')
    return None if ones is None else type(ones[0]).mixed(ones, x, weights)


def _one_each(sets: list[list[Tuner]], method: str) -> list[Tuner] | None:
    """The tuner of each set when every set holds exactly one, all of one class that has the classmethod
    ``method``; None otherwise."""
    if not sets or any(len(ts) != 1 for ts in sets):
        return None
    cls = type(sets[0][0])
    if not hasattr(cls, method) or any(type(ts[0]) is not cls for ts in sets):
        return None
    return [ts[0] for ts in sets]


def _same_shape(op_name: str, y: torch.Tensor, part: torch.Tensor) -> None:
    if y.shape[1:] != part.shape[1:]:
        raise ValueError(f'{op_name}: the adapters of this mixed batch give outputs of different shapes '
                         f'({tuple(part.shape[1:])} vs {tuple(y.shape[1:])}: a tuner inserts tokens in some of them); '
                         'route the samples of such adapters in batches of their own')


def _rows_of(value, idx: torch.Tensor, rows: int):
    """A per-row argument (a (rows, ...) attention mask) restricted to the rows ``idx``; other values as they are."""
    if isinstance(value, torch.Tensor) and value.ndim >= 3 and value.shape[0] == rows:
        return value[idx]
    return value


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
