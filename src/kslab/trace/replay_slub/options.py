"""The SLUB replay's options: the allocator-neutral ones of :class:`~kslab.trace.replay.options.TraceReplayOptions`
(where snapshots go, what a free of an object allocated before the trace does) and SLUB's own."""

from __future__ import annotations

from dataclasses import dataclass

from ..replay.options import TraceReplayOptions


@dataclass
class SlubReplayOptions(TraceReplayOptions):
    """``use_cache``: read the trace through the parse cache (``--cache-parsed``)."""

    use_cache: bool = True
