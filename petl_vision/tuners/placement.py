"""Where a tuner acts on its frozen op: one enum, and one table of how each placement runs and merges.

``TunedOp.forward`` and ``merge_tuners`` read this table and nothing else, so a placement cannot be misspelled
into a tuner that silently never runs (``Tuner.__init_subclass__`` and ``Tuner.__init__`` validate it).
"""
import enum


class Placement(enum.StrEnum):
    """U-Tuning's placements, plus the side network of Res-Tuning-Bypass."""

    PARALLEL = 'parallel'  # y = O(x) + U(x)                      (U scales its own output)
    SEQUENTIAL = 'sequential'  # y = U(O(x))                      (U includes its own residual where it has one)
    PROMPT = 'prompt'  # y = O([P; x]), P dropped from y          (tokens, or keys/values of an attention op)
    SIDE = 'side'  # y = O(x); s = U(x, y, s_prev) carried to the next op of the chain; the last op returns s

    @classmethod
    def of(cls, value: 'str | Placement', where: str) -> 'Placement':
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f'{where}: placement {value!r} is not one of '
                             f'{", ".join(p.value for p in cls)}') from None


# How each placement is applied by TunedOp (in this order) and whether it can be folded into O's weights.
PLACEMENTS = {
    Placement.PROMPT: dict(order=0, applied='O runs on [P; x]; P is dropped from its output (or carried on)',
                           mergeable=False),
    Placement.SIDE: dict(order=1, applied="O runs as is; the side state follows the chain of ops and replaces the "
                         "last op's output", mergeable=False),
    Placement.PARALLEL: dict(order=2, applied="U(x) is added to O's output; merged first (the updates add up)",
                             mergeable=True),
    Placement.SEQUENTIAL: dict(order=3, applied="U runs on O's output, in attach order; merged after the parallel "
                               'tuners, in attach order', mergeable=True),
}
