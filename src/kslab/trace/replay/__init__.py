"""Replay a kernel trace through the model.

Each kmem event runs on the CPU the trace names, in trace order; kernel pointers are mapped to
model objects.  The engine also keeps the machine's boot in step with the trace (the manifest's
creations and directives), recognises the allocations that the model makes itself (node
structures, array caches, off-slab freelists, ``struct kmem_cache``), handles frees of objects
allocated before the trace began (placeholders), runs ``cache_reap`` where the trace did, and acts
on markers (sync with a real /proc/slabinfo, snapshots, administrative actions).

The engine never prints: progress goes to a callback, results into :class:`ReplaySummary`.  The
package's modules, one per stage or part, are described in engine.py and docs/design.md.
"""

from .engine import Replayer
from .observer import Observer
from .options import (
    Applied,
    Clock,
    Followed,
    Internal,
    OrderUnknown,
    ReapMode,
    ReplayError,
    ReplayOptions,
    ReplaySummary,
    Skipped,
    UnknownFree,
)
from .sites import site_function

__all__ = ["Applied", "Clock", "Followed", "Internal", "Observer", "OrderUnknown", "ReapMode", "ReplayError",
           "ReplayOptions", "ReplaySummary", "Replayer", "Skipped", "UnknownFree", "site_function"]
