"""``TunedOp``: a frozen operation O plus its named tuners, swapped into the backbone in place of O."""
from collections.abc import Iterator

import torch
from torch import nn

from .base import OpInfo, PromptTuner, Tuner


class TunedOp(nn.Module):
    """Applies the tuners attached to ``base`` in their placements::

        y = B(O, x)                        a bypass tuner (alone on its op) replaces the output
    y = O([P_1; ...; P_k; x])          prompt tuners (P dropped from the output again)
        y = y + U_1(x) + ... + U_m(x)      parallel tuners, on O's input
        y = S_n(...S_1(y))                 sequential tuners, in attach order

    ``base`` is always *called* (never re-implemented), so its own hooks, tuners and quantisation keep
    working; attention ops with key/value prompts go through the backbone descriptor's ``attend``,
    which calls the attention's own sub-layers. Extra positional/keyword arguments of O (timm's
    ``attn_mask``, Swin's window ``mask``) are passed through untouched.
    """

    def __init__(self, base: nn.Module, op: OpInfo):
        super().__init__()
        self.base = base
        self.op = op
        self.tuners = nn.ModuleDict()
        self.tuners_enabled = True
        self._register_load_state_dict_pre_hook(self._load_base_keys)

    def add(self, name: str, tuner: Tuner) -> None:
        if name in self.tuners:
            raise ValueError(f'{self.op.name!r} already has a tuner named {name!r}; give the plan entry a `name`')
        tuner.check_op(self.op)
        if self.tuners and 'bypass' in {tuner.placement, *(t.placement for t in self.tuners.values())}:
            raise ValueError(f'a Bypass replaces the output of {self.op.name!r}; it cannot share the op with '
                             'other tuners (attach those to the blocks inside it instead)')
        self.tuners[name] = tuner

    def _active(self) -> list[Tuner]:
        if not self.tuners_enabled:
            return []
        return [t for t in self.tuners.values() if not t.merged]

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        active = self._active()
        bypass = [t for t in active if t.placement == 'bypass']
        if bypass:  # the side network's output replaces O's; check_bypass keeps it alone on its op
            return bypass[0].run(self.base, x)
        prompts = [t for t in active if t.placement == 'prompt']
        y = self._prompted(prompts, x, *args, **kwargs) if prompts else self.base(x, *args, **kwargs)
        for t in active:
            if t.placement == 'parallel':
                y = y + t(x)
        for t in active:
            if t.placement == 'sequential':
                y = t(y)
        return y

    def _prompted(self, prompts: list[PromptTuner], x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        outs = [t.prompt(x.shape[0]) for t in prompts]
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
        p = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, L, C); one prompt: no copy
        y = self.base(torch.cat([x[:, :n], p, x[:, n:]], dim=1), *args, **kwargs)  # (B, n+L+N', C)
        return torch.cat([y[:, :n], y[:, n + p.shape[1]:]], dim=1)

    # containers (a prompt on ``blocks``) still iterate/index like the wrapped Sequential
    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, idx):
        return self.base[idx]

    def _load_base_keys(self, state_dict, prefix, *args) -> None:
        """Accept checkpoints of the untuned backbone: ``<op>.weight`` -> ``<op>.base.weight``."""
        for key in list(state_dict):
            if key.startswith(prefix) and not key.startswith(prefix + 'base.') and \
                    not key.startswith(prefix + 'tuners.'):
                state_dict[prefix + 'base.' + key[len(prefix):]] = state_dict.pop(key)

    def extra_repr(self) -> str:
        return f'op={self.op.name!r}, kind={self.op.kind}'
