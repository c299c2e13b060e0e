"""The fast paths: the common case of an event, in one piece.

Most events of a trace are an allocation that the per-CPU array satisfies or a free of an object the
replay knows.  For those, :meth:`FastPath.alloc` and :meth:`FastPath.free` do in one function what
``Apply.apply`` -> ``_alloc`` / ``_free`` -> kmalloc / kfree ... would do, with the same effects in the
same order.  Each first checks, without changing anything, that the event needs none of the general
code's special cases; if one does, it returns False and the general code runs, which then sees exactly
the state it would have seen.  tests/trace/test_fast_path.py replays traces with and without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...mm.gfp import __GFP_ZERO
from ...mm.kernel import Kernel
from ...mm.page import PAGE_OFFSET, PAGE_SHIFT, PG_slab
from ...mm.slab.alloc import slab_want_init_on_alloc
from ...mm.slab.free import ___cache_free
from ...mm.slab.hits import array_alloc_hit_counted, array_free_hit
from ...mm.slab.kmalloc import kmalloc_slab
from ...mm.slab_def import ArrayCache, KmemCache
from ..events import KIND_NAMES, KMALLOC_NODE, KMEM_CACHE_FREE, TraceEvent
from .boot import Boot
from .internal import InternalPairing
from .markers import Markers
from .options import ReplaySummary
from .ptrmap import PointerMap
from .reap import TraceClock
from .shuffle import ShuffleFollower
from .sites import PLAIN_ALLOC_SITES, PLAIN_FREE_SITES, plain_alloc_site, plain_free_site

if TYPE_CHECKING:
    from .apply import Apply

# names with two leading underscores would be mangled inside the class
_GFP_ZERO = __GFP_ZERO
_cache_free = ___cache_free
_PG_SLAB = 1 << PG_slab


# ALLOC_CONDITIONS, when FastPath.alloc is taken:
# Apply._alloc() of an ordinary allocation that hits the per-CPU array, in one piece. Short-cuts
# ``Boot.cpu``/``set_cpu``, ``align_array``, ``kmalloc`` -> ``__do_kmalloc`` -> ``kmalloc_slab`` ->
# ``slab_alloc`` -> ``____cache_alloc``'s hit -> ``_post_alloc`` (and the ``_node`` and ``kmem_cache_alloc``
# variants), the ``event_hook`` call and ``record_alloc``. Taken only when: the trace clock does not move, the
# call site is not one of the model's own allocations (``ALLOC_SITES``) and no /proc/slabinfo read is awaited
# (no pairing, no ``run_pending``), the CPU exists and is online (no remapping, no bring-up), no mempolicy on
# this CPU and no spreading (``slab_alloc`` goes straight to ``____cache_alloc``), nothing is explained, no
# debug checks, the kernel's event hook is the replay's own (which ignores calls without an ``internal`` tag),
# the kernel did not show a refill on this CPU (nor a remote allocation whose event may be lost: lost.py, nor
# a grow: grows.py), the cache is known, and its array on this CPU holds an object.
# While the boot's interleave policies apply, the events of pids 0 and 1 take the general code; for any other
# task ``TaskPolicies.apply`` only removes this CPU's policy, which is done here too; with no policy on this
# CPU, ``slab_alloc`` -> ``__do_cache_alloc`` ends in the same ``____cache_alloc`` hit (a policy on another
# CPU changes nothing there).  With a non-empty array and no kernel refill, ``align_array`` changes nothing
# (it would only create an empty placeholder pool, which nothing can tell from no pool).


class FastPath:
    """The fast paths of one replay (see the module docstring)."""

    def __init__(self, k: Kernel, boot: Boot, ptrs: PointerMap, internal: InternalPairing, markers: Markers,
                 apply: Apply, clock: TraceClock, summary: ReplaySummary) -> None:
        self.k = k
        self.boot = boot
        self.ptrs = ptrs
        self.hook = internal.hook  # fixed for the replay's life (InternalPairing)
        self.markers = markers  # markers.pending_read is a new list after each read: read it there
        self.apply = apply
        self.refilled = apply.refills.refilled
        self.lost = apply.lost.pending
        self.grows = apply.grows.log
        self.clock = clock
        self.applied = summary.applied
        self.cpus = k.config.cpus
        self.shuffle: ShuffleFollower | None = None  # CONFIG_SLAB_FREELIST_RANDOM (see Apply.shuffle)

    # ---- the guards that depend on the replay's state, not on the event (the lean loop keeps them as flags) ----
    def allowed(self) -> bool:
        """What a fast allocation or free needs of the whole replay: nothing explained, no debug checks, the
        kernel's event hook is the replay's own.  The lean loop (columnar.py) works these guards out once
        per change of the state; FastPath.alloc/free test them per event."""
        k = self.k
        return k.explain is None and not k.debug and k.event_hook is self.hook

    def alloc_allowed(self) -> bool:
        """allowed(), and for an allocation: no /proc/slabinfo read awaited, no cpuset spreading."""
        k = self.k
        return (k.explain is None and not k.debug and k.event_hook is self.hook and not self.markers.pending_read
                and not k.cpuset_slab_spread)

    def cpu_allowed(self, cpu: int) -> bool:
        """What a fast allocation or free needs of its CPU: it exists, and is online while the manifest's
        directives bring CPUs up (no remapping, no bring-up)."""
        return 0 <= cpu < self.cpus and not (self.boot.directive_mode and cpu not in self.k.topo.online_cpus)

    def allowed_cpus(self, cpus: frozenset[int]) -> frozenset[int]:
        """The CPUs of ``cpus`` (of the machine) for which cpu_allowed() holds (the lean loop's flags)."""
        if not self.boot.directive_mode:
            return cpus
        return frozenset(c for c in cpus if self.cpu_allowed(c))

    def alloc_allowed_cpus(self, cpus: frozenset[int]) -> frozenset[int]:
        """The CPUs of ``cpus`` (of the machine) for which alloc_cpu_allowed() holds (the lean loop's flags)."""
        if not self.boot.directive_mode:
            refilled, lost, grows = self.refilled, self.lost, self.grows
            return cpus.difference(refilled, lost, grows) if refilled or lost or grows else cpus
        return frozenset(c for c in cpus if self.alloc_cpu_allowed(c))

    def alloc_cpu_allowed(self, cpu: int) -> bool:
        """cpu_allowed(), and for an allocation: the kernel showed no refill on this CPU, nor a remote
        allocation whose event may be lost (lost.py), nor a grow (grows.py)."""
        return (0 <= cpu < self.cpus and not (self.boot.directive_mode and cpu not in self.k.topo.online_cpus)
                and cpu not in self.refilled and cpu not in self.lost and cpu not in self.grows)

    # ---- the fast paths of one event ------------------------------------------------------------------------
    def alloc(self, ev: TraceEvent) -> bool:
        """Apply._alloc() of an ordinary allocation that hits the per-CPU array, in one piece (see
        ALLOC_CONDITIONS): the replay's guards (alloc_allowed, alloc_cpu_allowed), then alloc_row()."""
        cpu = ev.cpu
        return (self.alloc_allowed() and self.alloc_cpu_allowed(cpu)
                and self.alloc_row(ev.kind, ev.call_site, ev.pid, cpu, ev.ts, ev.ptr, ev.bytes_req, ev.gfp, ev.node,
                                   ev.name, ev))

    def alloc_row(self, kind: int, call_site: str, pid: int, cpu: int, ts: float, kptr: int, bytes_req: int,
                  gfp: int, nodeid: int, name: str | None, ev: TraceEvent | None) -> bool:
        """The allocation's own guards and its effects, for an event or a row of the lean loop (``ev`` None)
        that passed alloc_allowed() and alloc_cpu_allowed(): the clock, the call site, the CPU and policy
        the general code sets, the cache and its array (``_array_cache``), then the effects (``_take``).
        Without ``ev``, a pointer the replay believes live is left to the general code (False) before any
        effect the general code would not have as well."""
        k = self.k
        clock = self.clock
        if not kptr or (clock.in_seconds and int(ts * clock.hz) > k.jiffies):
            return False
        plain = PLAIN_ALLOC_SITES.get(call_site)
        if plain is None:
            plain = plain_alloc_site(call_site)
        if not plain:
            return False
        policies = self.boot.policies.active
        if policies and pid in (0, 1):
            return False
        # the general code sets the CPU from here on, whatever follows (set_cpu() changes nothing else)
        if cpu != k.cpu:
            k.set_cpu(cpu)
        if policies:
            k.set_policy(cpu, None)  # TaskPolicies.apply() of a task other than pids 0 and 1: the local policy
        if k.policies and cpu in k.policies:
            return False  # a mempolicy on this CPU: slab_alloc() may go to alternate_node_alloc()
        cachep: KmemCache | int | None
        if kind <= KMALLOC_NODE:  # kmalloc, kmalloc_node
            if bytes_req <= 0:
                return False
            cachep = kmalloc_slab(k, bytes_req, gfp)  # None (too large) or ZERO_SIZE_PTR: general code
            if cachep is None or isinstance(cachep, int):
                return False
        else:
            if not name:
                return False
            cachep = k.find_cache(name)
            if cachep is None:
                return False
        if kind & 1:  # the _node variants: slab_alloc_node() takes the array only for the local node
            node = k.numa_node
            if nodeid >= k.nr_node_ids or nodeid == -1:
                nodeid = node
            if nodeid != node or nodeid >= len(cachep.node) or cachep.node[nodeid] is None:
                return False
        cpu_cache = cachep.cpu_cache
        if not cpu_cache:
            return False
        ac = cpu_cache[cpu]
        if not ac.entry:
            return False
        kmap = self.ptrs.kmap
        if ev is None and kptr in kmap:
            return False  # record_alloc() of a pointer believed live: the general code
        self._take(kind, kptr, gfp, k, cachep, ac, ev)
        return True

    def _take(self, kind: int, kptr: int, flags: int, k: Kernel, cachep: KmemCache, ac: ArrayCache,
              ev: TraceEvent | None) -> None:
        """The effects of the general code for an allocation that hits ``ac``, in its order: the hit,
        _post_alloc()'s initialisation, the count of the event and record_alloc()."""
        ptrs = self.ptrs
        ptrs.evno += 1
        mptr = array_alloc_hit_counted(cachep, ac)  # ____cache_alloc(): the per-CPU hit, and _post_alloc()'s count
        if self.shuffle is not None:
            mptr = self.shuffle.alloc(kptr, cachep, mptr)
        if (flags & _GFP_ZERO or k.config.init_on_alloc) and slab_want_init_on_alloc(cachep, flags):
            k.memory.memset(mptr, 0, cachep.object_size)
        named: KmemCache | None = cachep
        if kind <= KMALLOC_NODE:
            # _alloc() names the cache of a kmalloc'd object after its page (Kernel.virt_to_cache)
            page = k.mem_map.pages.get((mptr - PAGE_OFFSET) >> PAGE_SHIFT)
            if page is not None and page.compound_head & 1:
                page = k.mem_map.compound_head(page)
            named = page.slab_cache if page is not None else None
        kind_name = KIND_NAMES[kind]
        self.applied[kind_name] += 1
        # record_alloc(): a pointer the replay believes live goes through the general code
        kmap = ptrs.kmap
        if kptr in kmap:
            assert ev is not None  # alloc_row() leaves a row with such a pointer to the general code
            self.apply.record_alloc(ev, mptr, named)
            return
        kmap[kptr] = mptr
        if named is not None:
            ptrs.kcache[kptr] = named
            ptrs.kpage_cache[kptr >> 12] = named
        if ptrs.out is not None:
            ptrs.write(kptr, mptr, kind_name, named)

    def free(self, ev: TraceEvent) -> bool:
        """Apply._free() of a known object that is not one of the model's own structures, in one piece: the
        replay's guards (allowed, cpu_allowed), then free_row()."""
        cpu = ev.cpu
        return self.allowed() and self.cpu_allowed(cpu) and self.free_row(ev.kind, ev.call_site, cpu, ev.ts,
                                                                            ev.ptr, ev.name)

    def free_row(self, kind: int, call_site: str, cpu: int, ts: float, kptr: int, name: str | None) -> bool:
        """The free's own guards and its effects, for an event or a row of the lean loop that passed
        allowed() and cpu_allowed().

        Short-cuts ``Boot.cpu``/``set_cpu``, ``_do_free``, ``kfree`` (or ``kmem_cache_free`` ->
        ``cache_from_obj``) -> ``__cache_free`` -> ``___cache_free``, and the ``event_hook`` call; a free
        that does not hit this CPU's array (alien, flush) still runs ``___cache_free`` itself.  Taken
        only when: the trace clock does not move, the call site is not one of the model's own frees
        (``FREE_SITES``), the CPU exists and is online, nothing is explained, no debug checks, the
        event hook is the replay's own, the kernel pointer is mapped to a model object that is not
        paired with a model structure, the object's page is a slab page, and for a
        ``kmem_cache_free`` the cache the trace names is the one the object lives in (else
        ``_do_free`` has a note to write)."""
        k = self.k
        clock = self.clock
        if kptr <= 16 or (clock.in_seconds and int(ts * clock.hz) > k.jiffies):
            return False
        plain = PLAIN_FREE_SITES.get(call_site)
        if plain is None:
            plain = plain_free_site(call_site)
        if not plain:
            return False
        # the general code sets the CPU from here on, whatever follows (set_cpu() changes nothing else)
        if cpu != k.cpu:
            k.set_cpu(cpu)
        ptrs = self.ptrs
        kmap = ptrs.kmap
        mptr = kmap.get(kptr)
        if mptr is None or mptr in ptrs.internal_rev:
            return False
        page = k.mem_map.pages.get((mptr - PAGE_OFFSET) >> PAGE_SHIFT)
        if page is None:
            return False
        if page.compound_head & 1:
            page = k.mem_map.compound_head(page)
        if not page.flags & _PG_SLAB:
            return False
        c = page.slab_cache  # virt_to_cache()
        if c is None:
            return False
        if kind == KMEM_CACHE_FREE:
            cachep = ptrs.kcache.get(kptr)
            if name:
                named = k.find_cache(name)
                if named is not None:
                    cachep = named
            if cachep is not None and cachep is not c:
                return False
        # -- from here on, the effects of the general code, in its order --
        ptrs.evno += 1
        del kmap[kptr]
        ptrs.kcache.pop(kptr, None)
        ac = c.cpu_cache[cpu]
        entry = ac.entry
        if (not k.sk_memalloc_socks and not k.config.init_on_free and (not k.numa_multi or page.nid == k.numa_node)
                and len(entry) < ac.limit
                and not (k.config.CONFIG_SLAB_FREELIST_HARDENED and entry and entry[-1] == mptr)):
            array_free_hit(c, ac, mptr)  # ___cache_free(): a local free with room in the array (its fast case)
        else:
            _cache_free(c, mptr, 0)  # ___cache_free()
        self.applied[KIND_NAMES[kind]] += 1
        return True
