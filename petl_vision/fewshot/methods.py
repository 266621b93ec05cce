"""Few-shot methods by name, for the evaluation tool and the benchmark: each an :data:`~.evaluator.AdaptFn`
built on a frozen backbone (headless, ``num_classes=0``)."""
import dataclasses

from torch import nn

from ..tuners import list_presets
from .adaptation import SupportSchedule
from .baselines import TSA, LinearHead, TSAConfig, TunerBaseline, attach_baseline
from .evaluator import frozen_prototype_baseline
from .prolad import ProLAD, ProLADConfig, attach_prolad

METHODS = ('frozen', 'head', 'tsa', 'prolad')


def build_fewshot_method(method: str, backbone: nn.Module, max_iter: int | None = None,
                         early_stop: bool = True):
    """``method``: ``frozen``, ``head``, ``tsa``, ``prolad`` or a core preset adapted per episode.

    ``max_iter`` caps the adaptation steps per stage (default: each method's own); ``early_stop=False`` runs
    exactly ``max_iter`` steps (fixed work per episode, as the benchmark times it).
    """
    def schedule(default: SupportSchedule) -> SupportSchedule:
        changes = {} if max_iter is None else {'max_iter': max_iter}
        if not early_stop:
            changes['patience'] = None
        return dataclasses.replace(default, **changes)

    if method == 'frozen':
        return frozen_prototype_baseline(backbone)
    if method == 'head':
        return LinearHead(backbone)
    if method == 'prolad':
        return ProLAD(attach_prolad(backbone), ProLADConfig(schedule=schedule(SupportSchedule())))
    if method == 'tsa':
        return TSA(attach_baseline(backbone, 'tsa'), TSAConfig(schedule=schedule(TSAConfig().schedule)))
    if method in list_presets():
        tuned = attach_baseline(backbone, method)
        return TunerBaseline(tuned, schedule=schedule(SupportSchedule(optimizer='adam')))
    raise ValueError(f'unknown few-shot method {method!r}; use {", ".join(METHODS)} or a preset: '
                     f'{", ".join(list_presets())}')
