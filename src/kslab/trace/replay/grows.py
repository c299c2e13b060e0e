"""Grows whose pages the trace shows coming from elsewhere, or not at all.

The model does not see the page cache, user pages or reclaim, so under memory pressure the kernel's node
can run out of pages where the model's has plenty.  The trace shows what the kernel's page allocator did
for a grow: its ``mm_page_alloc`` event between ``cache_grow_begin`` and ``cache_grow_end`` names the page
(its pfn, hence its node), and is written also when the allocation failed (``page=0000000000000000``):
``cache_grow_begin`` returned NULL, and the refill, ``____cache_alloc_node`` and then ``fallback_alloc``
went on to other nodes; a grow without ``__GFP_THISNODE`` (``fallback_alloc``'s) may get its pages from
another node than the one it asked for.  Per CPU, the kernel's grows since its last allocation event are
noted in order (the node of their pages, -1 when they failed); when one of them failed or got pages of
another node than the CPU's, the model's grows while it replays that CPU's next allocation take the
same outcomes, one each in order (``ReplayHooks.grow_outcomes``; a ``__GFP_THISNODE`` grow keeps its node,
and a grow of the model past the kernel's list is left to the model).  ``ReplaySummary.followed``
counts them.  Seen on the captures U3 and U8 (memory pressure from a tmpfs file: node 1 of U3 and
nodes of U8 run out of pages while the model's do not).
"""

from __future__ import annotations

from ...mm.kernel import Kernel
from ..events import TraceEvent
from .boot import DIRECT_MAP, Boot
from .options import Followed, ReplaySummary

NO_PAGE = -1  # an outcome: the grow's page allocation failed
UNSEEN = -2  # a grow whose page allocation the trace did not show


class GrowOutcomes:
    """The kernel's grows (see the module docstring), per CPU, for its next allocation."""

    def __init__(self, k: Kernel, boot: Boot, summary: ReplaySummary) -> None:
        self.k = k
        self.boot = boot
        self.summary = summary
        self.open: dict[int, int] = {}  # CPU -> a grow is open: the node of its pages (NO_PAGE, UNSEEN)
        self.log: dict[int, list[int]] = {}  # CPU -> outcomes of its grows since its last allocation
        self.unusual: dict[int, int] = {}  # CPU -> how many of them failed or took another node's pages

    def func(self, ev: TraceEvent) -> None:
        """``cache_grow_begin`` or ``cache_grow_end``."""
        cpu = ev.cpu
        if ev.text == "cache_grow_begin":
            self.open[cpu] = UNSEEN
            return
        node = self.open.pop(cpu, None)
        if node is None:
            return
        log = self.log.setdefault(cpu, [])
        log.append(node)
        if node == NO_PAGE or (node >= 0 and node != self.k.topo.cpu_to_node[cpu]):
            self.unusual[cpu] = self.unusual.get(cpu, 0) + 1
            # the model's grows for this CPU's next allocation follow the list (the same object)
            self.k.replay_hooks.grow_outcomes[cpu] = log

    def page_alloc(self, ev: TraceEvent) -> None:
        """An mm_page_alloc event: inside an open grow, the node of its pages (``page=0``: none)."""
        cpu = ev.cpu
        if cpu in self.open and self.open[cpu] == UNSEEN:
            self.open[cpu] = NO_PAGE if ev.ptr == 0 else self.boot.kernel_node(DIRECT_MAP + (ev.pfn << 12))

    def allocated(self, cpu: int) -> None:
        """The CPU's allocation event was replayed: its grows are done with."""
        self.log.pop(cpu, None)
        unusual = self.unusual.pop(cpu, 0)
        left = self.k.replay_hooks.grow_outcomes.pop(cpu, None)
        if left is not None:
            not_taken = sum(1 for n in left if n == NO_PAGE or (n >= 0 and n != self.k.topo.cpu_to_node[cpu]))
            self.summary.followed[Followed.GROW_FOLLOWED] += unusual - not_taken
            self.summary.followed[Followed.GROW_NOT_TAKEN] += not_taken
