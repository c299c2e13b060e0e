"""The replay's options, its summary, and the names of everything it counts.

Every counter of :class:`ReplaySummary` is keyed by one of the constants below (a suffix is appended to the
event's kind name, ``kmalloc (placeholder)``): code and tests use the constants, the printed summary and
the ``--json`` output show their text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from ...mm.errors import KslabError


class ReplayError(KslabError):
    """A replay that cannot go on (bad option, impossible input): names the file and line."""


class ReapMode(StrEnum):
    """``--reap``: where the model runs cache_reap."""

    TRACE = "trace"  # where the trace shows the kernel's runs
    TIMER = "timer"  # on the model's own clock
    OFF = "off"  # never


class UnknownFree(StrEnum):
    """``--unknown-free``: a free of an object allocated before the trace."""

    PLACEHOLDER = "placeholder"  # free a placeholder object of the cache
    IGNORE = "ignore"  # count it as skipped


class Clock(StrEnum):
    """What a trace's time stamps are."""

    SECONDS = "seconds"  # a clock in seconds (local, global...): jiffies follow it
    COUNTER = "counter"  # an event counter: jiffies are estimated at cache_reap runs


class Applied:
    """Keys of ``ReplaySummary.applied`` (the ``*_SUFFIX`` ones follow the event's kind name)."""

    PLACEHOLDER_SUFFIX: Final = " (placeholder)"
    CREATION_SUFFIX: Final = " (cache creation)"
    FREELIST_SUFFIX: Final = " (internal: off-slab freelist)"
    INTERNAL_SUFFIX: Final = " (internal)"
    NULL_FREE_SUFFIX: Final = " of NULL/ZERO_SIZE_PTR (nothing to do)"
    KFREE_INTERNAL: Final = "kfree (internal)"
    KMEM_CACHE_FREE_INTERNAL: Final = "kmem_cache_free (internal)"
    CACHE_REAP: Final = "cache_reap"
    CACHE_REAP_GAVE_UP: Final = "cache_reap (gave up: slab_mutex busy)"
    INIT_LATE: Final = "kmem_cache_init_late"
    CPUUP_PREPARE: Final = "cpuup_prepare"
    SHRINK: Final = "kmem_cache_shrink"
    MARKER: Final = "marker"
    MARKER_ACTED_ON: Final = "marker (acted on)"


class Skipped:
    """Keys of ``ReplaySummary.skipped`` (the ``*_SUFFIX`` ones follow the event's kind name)."""

    UNKNOWN_FREE_NO_CACHE: Final = "free of unknown pointer (cache unknown)"
    UNKNOWN_FREE_IGNORED: Final = "free of unknown pointer (ignored by policy)"
    UNKNOWN_FREE_NO_PLACEHOLDER: Final = "free of unknown pointer (no placeholder)"
    FAILED_IN_KERNEL_SUFFIX: Final = " that failed in the kernel"
    UNKNOWN_CACHE_SUFFIX: Final = " of an unknown cache"
    FAILED_IN_MODEL_SUFFIX: Final = " failed in the model"
    PAIRED_FREE_SUFFIX: Final = " of a pointer paired with a model structure"
    FUNCTION_LINE: Final = "function trace line (informational)"
    PAGE_EVENT: Final = "page allocator event (the model makes its own)"
    OTHER_KIND: Final = "event kind not replayed"


class Internal:
    """Keys of ``ReplaySummary.internal`` (the ``*_SUFFIX`` ones follow a pairing group, ``alloc:node``)."""

    PAIRED_SUFFIX: Final = " paired"
    MODEL_ONLY_SUFFIX: Final = " model only"
    MODEL_ONLY_FREED_SUFFIX: Final = " model only (freed)"
    TRACE_ONLY_SUFFIX: Final = " trace only"
    CACHE_INFERRED: Final = "cache inferred"
    IMPLICIT_FREE: Final = "implicit free (pointer reused without a traced free)"
    FREE_TO_OTHER_CACHE: Final = "kmem_cache_free to another cache than the model's"
    ARRAY_FOUND_ALLOCATED: Final = "array objects found allocated in the kernel"
    ARRAY_HAD_IN_KERNEL: Final = "array objects the kernel had in its array"


class Followed:
    """Keys of ``ReplaySummary.followed``: what the function tracer showed and the replay followed."""

    RACED_GROW: Final = "refills that raced with another CPU's grow"
    CLOCK_NEAREST: Final = "clock: no jiffies gives the trace's node passes (nearest taken)"
    EARLY_TIMERS_LATER: Final = "early node timers put later (jiffies started after the trace clock)"
    TIMERS_FROM_DRAINS: Final = "node timers set from the outcome of each drain_array"
    TIMERS_FROM_FREELIST: Final = "node timers expired as drain_freelist showed"
    PASSES_EQUAL: Final = "node passes equal to the trace's"
    PASSES_DIFFER: Final = "node passes differ from the trace's"
    FLUSH_BEFORE_REFILL: Final = "frees whose flush came before another CPU's refill"
    ALLOC_BEFORE_IRQ: Final = "allocations done before an interrupt whose events came first"
    ALLOC_AFTER_IRQ: Final = "allocations whose event came after an interrupt's"
    GROW_FOLLOWED: Final = "grows that failed, or took another node's pages, as the kernel's did"
    GROW_NOT_TAKEN: Final = "grows that failed or took another node's pages in the kernel, not made by the model"
    LOST_ALLOC: Final = "remote allocations the function tracer showed without an event (replayed)"
    LOST_ALLOC_UNKNOWN: Final = "remote allocations without an event, not replayed (call or node unknown)"
    BOOT_SLAB_LINED: Final = "slabs older than the trace lined up with the kernel's first object in them"
    BOOT_SLAB_OBJECTS: Final = "objects taken as allocated before the trace to line up slabs older than it"
    BOOT_SLAB_FREES: Final = "frees of objects older than the trace given the placeholder at the same index"


class OrderUnknown:
    """Keys of ``ReplaySummary.order_unknown``: what the kernel did in an order the trace cannot tell."""

    #: two CPUs of one node were in cache_alloc_refill of the same cache at once: which one took the node's
    #: list_lock first (and so which objects each got) is not in the trace; the replay takes the order of
    #: their allocation events
    REFILLS_OVERLAPPED: Final = "allocations whose refill overlapped another CPU's refill of the cache on its node"


@dataclass
class TraceReplayOptions:
    """The options of a trace's replay whatever the allocator: where the model's snapshots are written, and what
    a free of an object allocated before the trace does (``UnknownFree``: free a placeholder object of its cache,
    or count it as skipped).  SLAB's :class:`ReplayOptions` and SLUB's ``SlubReplayOptions``
    (``trace/replay_slub/options.py``) add their own."""

    out: str | None = None
    unknown_free: str = UnknownFree.PLACEHOLDER  # an UnknownFree value


@dataclass
class ReplayOptions(TraceReplayOptions):
    """The SLAB replay's options: the allocator-neutral ones and SLAB's (cache_reap, the sync with a real
    /proc/slabinfo, marker actions, snapshots at markers, the pointer map)."""

    reap: str = ReapMode.TRACE  # a ReapMode value
    start_slabinfo: str | None = None
    sync_on: str | None = None
    actions: list[tuple[str, str]] = field(default_factory=list)
    snapshot_on: str | None = None
    ptr_map: str | None = None
    # (bad trace lines are the parser's business: ``iter_events(skip_bad=...)``)


@dataclass
class ReplaySummary:
    """What the replay did: every event is applied or skipped with a reason."""

    events: int = 0
    applied: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    internal: Counter[str] = field(default_factory=Counter)
    unknown_frees: Counter[str] = field(default_factory=Counter)
    placeholders: Counter[str] = field(default_factory=Counter)
    sync: dict[str, Any] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    cpu_remapped: int = 0
    reaps: int = 0
    #: what the function tracer showed and the replay followed: the kernel's cache_reap runs (and how
    #: the model's compare), refills that ran at the same time on two CPUs
    followed: Counter[str] = field(default_factory=Counter)
    #: allocations (or frees) whose order in the kernel the trace cannot tell (keys: ``OrderUnknown``)
    order_unknown: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    #: CONFIG_SLAB_FREELIST_RANDOM: per cache, what became of the objects fresh slabs handed out (keys of
    #: shuffle.FreshAlloc), and the fresh objects it took to learn the cache's random_seq
    freelist: dict[str, Counter[str]] = field(default_factory=dict)
    freelist_learned: dict[str, int] = field(default_factory=dict)

    def accounted(self) -> int:
        return sum(self.applied.values()) + sum(self.skipped.values())
