"""Allocations the function tracer shows and no kmem event does.

``alternate_node_alloc`` (an allocation under an interleave policy, or cpuset spreading) calls
``____cache_alloc_node`` only for a node other than the CPU's own, so a ``____cache_alloc_node`` line
called from one of ``slab_alloc``'s entry points (``kmem_cache_alloc``, ``kmem_cache_alloc_trace``,
``__kmalloc``, ``__kmalloc_track_caller``) stands for an allocation of a remote object.  (The other call
from ``__do_cache_alloc``, for the local node after ``____cache_alloc`` failed, comes after a
``cache_alloc_refill`` line; a remote node without memory shows ``fallback_alloc``.)  When the task's next
allocation event in that context nevertheless returns an object of the CPU's own node, that line's own
event is missing from the trace: the oracle traces lose one this way while ``tracepoint_add_func``
replaces the probes of the kmalloc tracepoint during boot.  Its object stays allocated in the kernel, so
that a remote slab of the model would hand out every later object one slot early without it.

The lost allocation is replayed before the next event, as the same call (its cache and flags: the
trace gives nothing else) on the node the interleave rotor gave before the next event's node; its
object joins the placeholders (allocated objects of unknown identity).  ``ReplaySummary.followed``
counts these, and the lines that could not be replayed (another kind of next allocation, or no way to
know the node).
"""

from __future__ import annotations

from ...mm.kernel import Kernel
from ...mm.slab.alloc import kmem_cache_alloc_node
from ...mm.slab.kmalloc import kmalloc_node
from ..events import KMALLOC, KMEM_CACHE_ALLOC, TraceEvent
from .boot import Boot
from .options import Followed, ReplaySummary
from .placeholders import Placeholders

#: slab_alloc()'s callers: the kmem event kind each one writes
SLAB_ALLOC_ENTRIES = {
    "kmem_cache_alloc": KMEM_CACHE_ALLOC,
    "kmem_cache_alloc_trace": KMALLOC,
    "__kmalloc": KMALLOC,
    "__kmalloc_track_caller": KMALLOC,
}


class LostAllocs:
    """Follows ``____cache_alloc_node`` lines from slab_alloc's entry points; replays the allocations
    whose events are missing (see the module docstring)."""

    def __init__(self, k: Kernel, boot: Boot, placeholders: Placeholders, summary: ReplaySummary) -> None:
        self.k = k
        self.boot = boot
        self.placeholders = placeholders
        self.summary = summary
        #: CPU -> (the line's event kind, context, pid): a remote allocation seen, its event not yet
        self.pending: dict[int, tuple[int, int, int]] = {}

    def func(self, ev: TraceEvent, refilled: bool) -> None:
        """A ``____cache_alloc_node`` line (``refilled``: the CPU showed cache_alloc_refill since its last
        allocation event)."""
        if ev.text != "____cache_alloc_node":
            return
        kind = SLAB_ALLOC_ENTRIES.get(ev.parent)
        if kind is not None and not refilled:
            self.pending[ev.cpu] = (kind, ev.irq, ev.pid)
        else:  # fallback_alloc, a _node entry point, or the local retry after a refill
            self.pending.pop(ev.cpu, None)

    def before_alloc(self, ev: TraceEvent) -> None:
        """An allocation event of a CPU with a pending line: replay the lost allocation if this event's
        object is of the CPU's own node."""
        kind, irq, pid = self.pending.pop(ev.cpu)
        if ev.irq != irq or ev.pid != pid or not ev.ptr:
            return
        k = self.k
        boot = self.boot
        cpu = boot.cpu(ev)
        local = k.topo.cpu_to_node[cpu]
        kn = boot.kernel_node(ev.ptr)
        if kn != local:
            return  # the line was this allocation's own
        if ev.kind != kind:
            self.summary.followed[Followed.LOST_ALLOC_UNKNOWN] += 1
            return
        if boot.policies.active:
            boot.policies.apply(ev, cpu)  # the policy of this event's task (applied again for its own event)
        node = self._remote_node(cpu, kn)
        if node < 0:
            self.summary.followed[Followed.LOST_ALLOC_UNKNOWN] += 1
            return
        k.set_cpu(cpu)
        if kind == KMALLOC:
            mptr = kmalloc_node(k, ev.bytes_req, ev.gfp, node)
        else:
            cachep = boot.cache_by_name(ev.name, ev) if ev.name else None
            if cachep is None:
                self.summary.followed[Followed.LOST_ALLOC_UNKNOWN] += 1
                return
            mptr = kmem_cache_alloc_node(cachep, ev.gfp, node)
        c = k.virt_to_cache(mptr) if mptr > 16 else None
        if c is None:
            self.summary.followed[Followed.LOST_ALLOC_UNKNOWN] += 1
            return
        self.placeholders.pool(c).append(mptr)
        self.summary.followed[Followed.LOST_ALLOC] += 1

    def _remote_node(self, cpu: int, kn: int) -> int:
        """The node of the lost allocation: the interleave rotor's node before ``kn`` (the next event's),
        or, on a machine of two nodes, the other one; -1 when it cannot be known."""
        k = self.k
        pol = k.policies.get(cpu) if k.policies else None
        if pol is not None and pol.mode == "interleave" and kn in pol.nodes and len(pol.nodes) > 1:
            nodes = sorted(pol.nodes)
            return nodes[nodes.index(kn) - 1]
        online = sorted(k.topo.online_nodes)
        if len(online) == 2:
            return online[1 - online.index(kn)] if kn in online else -1
        return -1

