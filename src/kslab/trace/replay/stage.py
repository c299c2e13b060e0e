"""The interface of the replay's stages: each takes events (``push``), passes them on to ``down`` (now or
later, possibly in another order), and gives back whatever it holds on ``flush``."""

from __future__ import annotations

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
