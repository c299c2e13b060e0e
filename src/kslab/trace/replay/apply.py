"""The general apply path: one event of the trace, applied to the model (allocations, frees,
function-tracer lines, markers)."""

from __future__ import annotations

from collections import Counter, deque

from ...mm.errors import KernelBug
from ...mm.kernel import Kernel
from ...mm.slab.alloc import kmem_cache_alloc, kmem_cache_alloc_node
from ...mm.slab.free import kfree, kmem_cache_free
from ...mm.slab.kmalloc import kmalloc, kmalloc_node
from ...mm.slab_def import KmemCache
from ..events import (
    FUNC,
    KFREE,
    KMALLOC,
    KMALLOC_NODE,
    KMEM_CACHE_ALLOC,
    KMEM_CACHE_ALLOC_NODE,
    KMEM_CACHE_FREE,
    MARK,
    MM_PAGE_ALLOC,
    MM_PAGE_FREE,
    MM_PAGE_FREE_BATCHED,
    TraceEvent,
)
from .boot import Boot
from .bootslabs import BootSlabs
from .fastpath import FastPath
from .grows import GrowOutcomes
from .internal import InternalPairing
from .lost import LostAllocs
from .markers import Markers
from .options import Applied, Followed, Internal, OrderUnknown, ReplayError, ReplaySummary, Skipped, UnknownFree
from .placeholders import Placeholders
from .ptrmap import PointerMap
from .reap import ReapFollower, TraceClock
from .shuffle import ShuffleFollower
from .sites import (
    ALLOC_SITES,
    FREE_SITES,
    KNOWN_SHRINK_CALLERS,
    RANDOM_SEQ_ALLOC,
    RANDOM_SEQ_FREE,
    SLABINFO_READ_SITES,
    site_function,
)
from .stage import Stage
from .sync import Sync


class RefillEvidence:
    """What the function tracer showed of the kernel's refills: per CPU, a cache_alloc_refill since its
    last allocation (``refilled``), the line of its last refill and of a grow under it, and the last
    allocations that grew a slab (line, CPU, cache, node), and of the last refills (first line, allocation
    line, CPU, cache, node, and whether the allocation is already counted in ``order_unknown``)."""

    def __init__(self, k: Kernel, summary: ReplaySummary) -> None:
        self.k = k
        self.summary = summary
        self.refilled: Counter[int] = Counter()
        self.refill_line: dict[int, int] = {}
        self.grew: dict[int, int] = {}
        self.recent_grows: deque[tuple[int, int, KmemCache, int]] = deque(maxlen=32)
        self.recent_refills: deque[tuple[int, int, int, KmemCache, int, list[bool]]] = deque(maxlen=32)

    def overlap_check(self, ev: TraceEvent, cpu: int, cachep: KmemCache) -> None:
        """This allocation's cache_alloc_refill (``refill_line`` .. the event) overlapped a refill of the same
        cache by another CPU of the node: both ran for the node's ``list_lock`` at once, and which took it
        first (which objects each got) is not in the trace.  Each such allocation is counted once in
        ``order_unknown``; the replay keeps the order of the allocation events (``cache_alloc_refill``)."""
        start = self.refill_line.get(ev.cpu, ev.lineno)
        node = self.k.topo.cpu_to_node[cpu]
        mine = [False]
        for s, e, other, c, nd, counted in self.recent_refills:
            if other != ev.cpu and c is cachep and nd == node and s < ev.lineno and start < e:
                for flag in (counted, mine):
                    if not flag[0]:
                        flag[0] = True
                        self.summary.order_unknown[OrderUnknown.REFILLS_OVERLAPPED] += 1
        self.recent_refills.append((start, ev.lineno, ev.cpu, cachep, node, mine))

    def race_check(self, ev: TraceEvent, cpu: int) -> None:
        """The kernel grew a slab for this allocation (the function tracer showed cache_grow_begin under
        its cache_alloc_refill).  If another CPU of the node grew the same cache after this CPU's refill
        began, the two refills ran at the same time and each found the node empty: the model, which
        replays the other CPU's allocation first, must not let this one take that CPU's new slab."""
        k = self.k
        kind = ev.kind
        if kind == KMALLOC:
            cachep = k.kmalloc_slab(ev.bytes_req, ev.gfp)
        elif kind == KMEM_CACHE_ALLOC and ev.name:
            cachep = k.find_cache(ev.name)
        else:
            return  # the _node variants refill through ____cache_alloc_node, not cache_alloc_refill
        if cachep is None:
            return
        node = k.topo.cpu_to_node[cpu]
        start = self.refill_line.get(ev.cpu, 0)
        for lineno, other, c, nd in self.recent_grows:
            if other != ev.cpu and c is cachep and nd == node and lineno > start:
                k.replay_hooks.raced(cachep)
                self.summary.followed[Followed.RACED_GROW] += 1
                break
        self.recent_grows.append((ev.lineno, ev.cpu, cachep, node))


class Apply(Stage):
    """The last stage: each event applied to the model, by the fast path when it can (``fast_path``), else
    by the general code (``apply``)."""

    fast_path = True  # False: every event goes through apply() (the tests compare both)
    align_arrays = True  # False: per-CPU arrays are not reconciled with the kernel's (see Placeholders)

    def __init__(self, k: Kernel, boot: Boot, ptrs: PointerMap, internal: InternalPairing,
                 placeholders: Placeholders, sync: Sync, markers: Markers, reaper: ReapFollower,
                 clock: TraceClock, unknown_free: str, summary: ReplaySummary) -> None:
        super().__init__()
        self.k = k
        self.boot = boot
        self.ptrs = ptrs
        self.internal = internal
        self.placeholders = placeholders
        self.sync = sync
        self.markers = markers
        self.reaper = reaper
        self.clock = clock
        self.unknown_free_policy = unknown_free
        self.summary = summary
        self.refills = RefillEvidence(k, summary)
        self.saw_functions = False
        self.shrink_rotor: Counter[str] = Counter()
        self.lost = LostAllocs(k, boot, placeholders, summary)
        self.grows = GrowOutcomes(k, boot, summary)
        self.boot_slabs = BootSlabs(k, boot, placeholders, summary)
        self.fast = FastPath(k, boot, ptrs, internal, markers, self, clock, summary)
        #: CONFIG_SLAB_FREELIST_RANDOM: the follower of fresh slabs' order (set by the engine)
        self.shuffle: ShuffleFollower | None = None

    def push(self, ev: TraceEvent) -> None:
        if self.markers.reading is not None:
            self._push(ev)
            self.markers.reader_event(ev)
        else:
            self._push(ev)

    def _push(self, ev: TraceEvent) -> None:
        kind = ev.kind
        if kind <= KMEM_CACHE_FREE and self.fast_path:
            fast = self.fast
            if fast.alloc(ev) if kind <= KMEM_CACHE_ALLOC_NODE else fast.free(ev):
                return
        self.apply(ev)

    def apply(self, ev: TraceEvent) -> None:
        """The general code: any event."""
        self.ptrs.evno += 1
        kind = ev.kind
        clock = self.clock
        try:
            # TraceClock.follow()'s test inlined: the clock moves on at most once per jiffy of the trace
            if clock.in_seconds and int(ev.ts * clock.hz) > self.k.jiffies:
                clock.follow(ev)
            if kind <= KMEM_CACHE_ALLOC_NODE:
                self._alloc(ev)
            elif kind <= KMEM_CACHE_FREE:
                self._free(ev)
            elif kind == FUNC:
                self._func(ev)
            elif kind == MARK:
                self.markers.mark(ev)
            elif kind in (MM_PAGE_ALLOC, MM_PAGE_FREE, MM_PAGE_FREE_BATCHED):
                if kind == MM_PAGE_ALLOC and self.grows.open:
                    if ev.cpu in self.grows.open and ev.ptr:
                        self.boot_slabs.grow_page(ev.pfn, ev.order)
                    self.grows.page_alloc(ev)
                self.summary.skipped[Skipped.PAGE_EVENT] += 1
            else:
                self.summary.skipped[Skipped.OTHER_KIND] += 1
        except KernelBug as e:
            raise ReplayError(f"line {ev.lineno}: the kernel would BUG() here: {e}") from e

    # ---- allocations -------------------------------------------------------------------------------
    def _internal_alloc(self, ev: TraceEvent, site: str) -> bool:
        """An allocation of one of the kernel's own structures (paired, not replayed): True if it is one."""
        kind = ev.kind
        refilled = self.refills.refilled
        if kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_ALLOC_NODE):
            group = ALLOC_SITES.get(site)
            if group == "alloc:kmem_cache" or (ev.name == "kmem_cache" and site in ("kmem_cache_create_usercopy",
                                                                                 "create_cache")):
                refilled.pop(ev.cpu, None)
                self.summary.applied[ev.kind_name + Applied.CREATION_SUFFIX] += 1
                # the model's kmem_cache_create allocates its struct kmem_cache itself: on the CPU the
                # trace says, under the task's policy (an interleaving boot task takes it from the node
                # the kernel's pointer is on), so that it comes from the same array the kernel's did
                # (a CPU not up yet in the model would be brought up by applying the manifest up to its
                # @cpu_up, creations included: the creation is then left to the boot CPU)
                cpu = self.boot.cpu(ev, bring_up=False)
                if cpu in self.k.topo.online_cpus:
                    self.k.set_cpu(cpu)
                    if self.boot.policies.active:
                        self.boot.policies.apply(ev, cpu)
                else:
                    self.k.set_cpu(0)
                self.internal.traced_creation(ev.ptr)
                return True
            if group == "alloc:freelist":
                refilled.pop(ev.cpu, None)
                self.summary.applied[ev.kind_name + Applied.FREELIST_SUFFIX] += 1
                self.internal.trace_internal(group, ev.ptr)
                return True
        elif site in ALLOC_SITES and ALLOC_SITES[site] in ("alloc:node", "alloc:array", RANDOM_SEQ_ALLOC):
            # by call site: kmem_cache_node structures come from init_cache_node (and the boot paths);
            # setup_kmem_cache_node's own kmallocs are the shared array and the inlined alien arrays
            # (an alien array of 12 entries is 120 bytes, the size of a kmem_cache_node: not a clue);
            # CONFIG_SLAB_FREELIST_RANDOM's random_seq comes from cache_random_seq_create (the model's
            # enable_cpucache makes its own)
            refilled.pop(ev.cpu, None)
            self.summary.applied[ev.kind_name + Applied.INTERNAL_SUFFIX] += 1
            self.internal.trace_internal(ALLOC_SITES[site], ev.ptr)
            return True
        return False

    def _alloc(self, ev: TraceEvent) -> None:
        if self.lost.pending and ev.cpu in self.lost.pending:
            self.lost.before_alloc(ev)
        if self.grows.log and ev.cpu in self.grows.log:
            try:  # the model's grows follow the kernel's outcomes (grows.py)
                self._alloc_one(ev)
            finally:
                self.grows.allocated(ev.cpu)
            return
        self._alloc_one(ev)

    def _alloc_one(self, ev: TraceEvent) -> None:
        kind = ev.kind
        if ev.kind in (KMEM_CACHE_ALLOC_NODE, KMALLOC_NODE, KMALLOC, KMEM_CACHE_ALLOC) and ev.ptr == 0:
            self.refills.refilled.pop(ev.cpu, None)
        site = site_function(ev.call_site)
        if self._internal_alloc(ev, site):
            return
        if not ev.ptr:
            self.summary.skipped[ev.kind_name + Skipped.FAILED_IN_KERNEL_SUFFIX] += 1
            return
        cpu = self.boot.cpu(ev)
        k = self.k
        k.set_cpu(cpu)
        if self.boot.policies.active:
            self.boot.policies.apply(ev, cpu)
        refills = self.refills
        refilled = refills.refilled.pop(ev.cpu, 0) > 0
        if self.align_arrays and self.saw_functions:
            self.placeholders.align_array(ev, cpu, refilled, self.sync.synced)
        grew = refills.grew.pop(ev.cpu, 0)
        if grew and refilled:
            refills.race_check(ev, cpu)
        if not self.sync.synced or not self.sync.path:  # until a sync with a real /proc/slabinfo
            bcache = (k.kmalloc_slab(ev.bytes_req, ev.gfp) if kind in (KMALLOC, KMALLOC_NODE)
                      else k.find_cache(ev.name) if ev.name else None)
            self.boot_slabs.before_alloc(ev, cpu, bcache, refilled, bool(grew))
        if kind == KMALLOC:
            mptr = kmalloc(k, ev.bytes_req, ev.gfp)
            cachep = k.virt_to_cache(mptr) if mptr > 16 else None
        elif kind == KMALLOC_NODE:
            mptr = kmalloc_node(k, ev.bytes_req, ev.gfp, ev.node if ev.node < k.nr_node_ids else -1)
            cachep = k.virt_to_cache(mptr) if mptr > 16 else None
        else:
            cachep = self.boot.cache_by_name(ev.name, ev) if ev.name else self.boot.infer_cache(None, ev)
            if cachep is None:
                self.summary.skipped[ev.kind_name + Skipped.UNKNOWN_CACHE_SUFFIX] += 1
                return
            if kind == KMEM_CACHE_ALLOC:
                mptr = kmem_cache_alloc(cachep, ev.gfp)
            else:
                mptr = kmem_cache_alloc_node(cachep, ev.gfp, ev.node if ev.node < k.nr_node_ids else -1)
        k.replay_hooks.clear_race()
        if not mptr:
            self.summary.skipped[ev.kind_name + Skipped.FAILED_IN_MODEL_SUFFIX] += 1
            return
        self.summary.applied[ev.kind_name] += 1
        if refilled and cachep is not None:
            refills.overlap_check(ev, cpu, cachep)
        if self.shuffle is not None and cachep is not None:
            mptr = self.shuffle.alloc(ev.ptr, cachep, mptr)
        self.record_alloc(ev, mptr, cachep)
        if self.markers.pending_read and site in SLABINFO_READ_SITES:
            self.markers.run_pending(ev, read=ev)

    def record_alloc(self, ev: TraceEvent, mptr: int, cachep: KmemCache | None) -> None:
        """The kernel's object ``ev.ptr`` is the model's ``mptr`` from now on."""
        kptr = ev.ptr
        ptrs = self.ptrs
        old = ptrs.kmap.get(kptr)
        if old is not None:
            # the kernel handed out a pointer we believed live: its free was not in the trace
            self.summary.internal[Internal.IMPLICIT_FREE] += 1
            self.summary.notes.append(f"line {ev.lineno}: {kptr:#x} reallocated without a traced free")
            oc = ptrs.kcache.get(kptr)
            if ptrs.internal_rev.get(old) == kptr:
                # paired with one of the model's own structures: the model keeps it
                del ptrs.internal_rev[old]
            elif oc is not None:
                self._do_free(ev, oc, old)
        if mptr:
            ptrs.kmap[kptr] = mptr
            if cachep is not None:
                ptrs.kcache[kptr] = cachep
                ptrs.kpage_cache[kptr >> 12] = cachep
        ptrs.write(kptr, mptr, ev.kind_name, cachep)

    # ---- frees -------------------------------------------------------------------------------------
    def _do_free(self, ev: TraceEvent, cachep: KmemCache | None, mptr: int) -> None:
        k = self.k
        if ev.kind == KMEM_CACHE_FREE and cachep is not None:
            real = k.virt_to_cache(mptr)
            if real is not cachep:
                # the trace names another cache than the one the model's object lives in: free it
                # where it lives (the kernel, hardened or not, must not see objects cross caches)
                self.summary.notes.append(f"line {ev.lineno}: kmem_cache_free({ev.name}) of an object of "
                                          f"{real.name if real else '?'} in the model")
                self.summary.internal[Internal.FREE_TO_OTHER_CACHE] += 1
                if real is None:
                    return
                cachep = real
            kmem_cache_free(cachep, mptr)
        else:
            kfree(k, mptr)

    def _free(self, ev: TraceEvent) -> None:
        site = site_function(ev.call_site)
        kind = ev.kind
        if kind == KFREE and site in FREE_SITES and FREE_SITES[site] in ("free:array", RANDOM_SEQ_FREE):
            self.summary.applied[Applied.KFREE_INTERNAL] += 1
            self.internal.trace_internal(FREE_SITES[site], ev.ptr)
            return
        if kind == KMEM_CACHE_FREE and site in FREE_SITES and FREE_SITES[site] in ("free:freelist",
                                                                                   "free:kmem_cache"):
            self.summary.applied[Applied.KMEM_CACHE_FREE_INTERNAL] += 1
            self.internal.trace_internal(FREE_SITES[site], ev.ptr)
            return
        kptr = ev.ptr
        if kptr <= 16:
            self.summary.applied[ev.kind_name + Applied.NULL_FREE_SUFFIX] += 1
            return
        cpu = self.boot.cpu(ev)
        self.k.set_cpu(cpu)
        ptrs = self.ptrs
        mptr = ptrs.kmap.get(kptr)
        if mptr is not None and ptrs.internal_rev.get(mptr) == kptr:
            # the kernel pointer stands for one of the model's own structures (paired with an internal
            # allocation): an ordinary free of it in the trace must not free the model's structure
            self.summary.skipped[ev.kind_name + Skipped.PAIRED_FREE_SUFFIX] += 1
            return
        mptr = ptrs.kmap.pop(kptr, None)
        cachep = ptrs.kcache.pop(kptr, None)
        if kind == KMEM_CACHE_FREE and ev.name:
            named = self.k.find_cache(ev.name)
            if named is not None:
                cachep = named
        if mptr is None:
            self._unknown_free(ev, cachep)
            return
        self._do_free(ev, cachep, mptr)
        self.summary.applied[ev.kind_name] += 1

    def _unknown_free(self, ev: TraceEvent, cachep: KmemCache | None) -> None:
        """A free of an object allocated before the trace began: a placeholder of its cache is freed."""
        kptr = ev.ptr
        if cachep is None:
            cachep = self.ptrs.kpage_cache.get(kptr >> 12)
        if cachep is None:
            self.summary.skipped[Skipped.UNKNOWN_FREE_NO_CACHE] += 1
            return
        self.summary.unknown_frees[cachep.name] += 1
        if self.unknown_free_policy != UnknownFree.PLACEHOLDER:
            self.summary.skipped[Skipped.UNKNOWN_FREE_IGNORED] += 1
            return
        pool = self.placeholders.pools.get(cachep)
        mptr = 0 if self.sync.synced and self.sync.path else self.boot_slabs.unknown_free(cachep, kptr)
        if not mptr:
            mptr = pool.pop() if pool else self.placeholders.one(cachep)
        if not mptr:
            self.summary.skipped[Skipped.UNKNOWN_FREE_NO_PLACEHOLDER] += 1
            return
        self._do_free(ev, cachep, mptr)
        self.summary.applied[ev.kind_name + Applied.PLACEHOLDER_SUFFIX] += 1

    # ---- function-tracer lines ---------------------------------------------------------------------
    def _func(self, ev: TraceEvent) -> None:
        fn = ev.text
        parent = ev.parent
        k = self.k
        boot = self.boot
        self.saw_functions = True
        if fn == "cache_alloc_refill":
            refills = self.refills
            refills.refilled[ev.cpu] = 1
            refills.refill_line[ev.cpu] = ev.lineno
            refills.grew.pop(ev.cpu, None)
        elif fn == "____cache_alloc_node":
            self.lost.func(ev, ev.cpu in self.refills.refilled)
        elif fn == "cache_grow_begin" or fn == "cache_grow_end":
            self.grows.func(ev)
            if fn == "cache_grow_begin" and parent == "cache_alloc_refill":
                self.refills.grew[ev.cpu] = ev.lineno
        elif fn == "cache_reap":
            if self.reaper.cache_reap(ev):
                return
        elif fn == "enable_cpucache" and parent == "kmem_cache_init_late":
            if boot.directive_mode and not k.init_late_done:
                boot.init_late_step()
                self.summary.applied[Applied.INIT_LATE] += 1
                return
        elif fn == "setup_kmem_cache_node" and parent == "cpuup_prepare":
            if boot.directive_mode and boot.cpuup_prepare():
                self.summary.applied[Applied.CPUUP_PREPARE] += 1
                return
        elif fn == "kmem_cache_shrink":
            names = KNOWN_SHRINK_CALLERS.get(parent)
            if names:
                i = self.shrink_rotor[parent]
                self.shrink_rotor[parent] += 1
                c = k.find_cache(names[i % len(names)])
                if c is not None:
                    k.kmem_cache_shrink(c, cpu=boot.cpu(ev))
                    self.summary.applied[Applied.SHRINK] += 1
                    return
        self.summary.skipped[Skipped.FUNCTION_LINE] += 1
