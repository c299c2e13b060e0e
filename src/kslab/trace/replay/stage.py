"""The interface of the replay's stages: each takes events (``push``), passes them on to ``down`` (now or
later, possibly in another order), and gives back whatever it holds on ``flush``."""

from __future__ import annotations

from collections.abc import Callable

from ..events import TraceEvent


class Stage:
    """One stage of the pipeline (see engine.Replayer): ``push(ev)``, ``flush()``, a downstream ``down``."""

    down: Stage

    def __init__(self) -> None:
        self.down = self

    def push(self, ev: TraceEvent) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Pass on everything held back (as the end of the input does)."""

    def push_held(self, ev: TraceEvent, held: list[TraceEvent], first: Callable[[TraceEvent], None] | None) -> None:
        """A hold ends at ``ev``: the ``held`` events go through this stage again, in their order, with
        ``ev`` before them (passed to ``first``) when the trace showed that the kernel did it first, else
        after them (``first`` None)."""
        if first is not None:
            first(ev)
        for e in held:
            self.push(e)
        if first is None:
            self.push(ev)
