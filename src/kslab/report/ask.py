"""The heap-layout questions researchers ask, answered from the model (``kslab ask``).

* :func:`holder`: for an address, which cache, slab, slab list, and which CPU, shared or alien array (or the
  slab's freelist, or a caller) holds it now (mm/slab.c's places an object can be: ``ac->entry``,
  ``n->shared``, ``n->alien``, the slab's freelist above ``page->active``);
* :func:`next_objects`: for a cache and a CPU, the slabs and addresses the next N allocations get, and how
  many allocations come before the first one from a fresh slab (``____cache_alloc`` ->
  ``cache_alloc_refill``: the CPU array, then the shared array, then the node's partial and free slabs, then
  ``cache_grow_begin``).  With CONFIG_SLAB_FREELIST_RANDOM an object of a slab not grown yet sits at an
  offset that depends on the slab's random start (``freelist_state_initialize``): the answer says so and
  gives the distribution over the start;
* :func:`until_release`: for a slab, the frees (which objects) until it goes back to the page allocator,
  and when: at once in ``free_block`` if the node then holds more than ``free_limit`` free objects, else
  at a later ``cache_reap`` (``drain_freelist``, at most (free_limit + 5 num - 1) / (5 num) slabs per node
  pass, unless ``free_touched``);
* :class:`SlotHistory`: for a freed object, which later allocation took its slot (cache, call site, trace
  line), in the kernel's trace and in the model.

:func:`next_objects` and :func:`until_release` find their answers by running the model on: they change the
machine they are given (run them last, or on a machine rebuilt for the question).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from ..mm.gfp import GFP_KERNEL
from ..mm.kernel import Kernel
from ..mm.page import PAGE_SIZE, Page
from ..mm.slab.alloc import kmem_cache_alloc
from ..mm.slab.free import kfree
from ..mm.slab_def import CFLGS_OBJFREELIST_SLAB, KmemCache
from ..trace.events import KFREE, KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE, KMEM_CACHE_FREE, TraceEvent
from ..trace.freelist_learn import start_distribution


class Where(StrEnum):
    """Who holds an object now."""

    CALLER = "allocated (a caller holds it)"
    CPU_ARRAY = "a per-CPU array (free, cached)"
    SHARED = "the node's shared array (free, cached)"
    ALIEN = "an alien array (free, on its way to its own node)"
    SLAB = "the slab's freelist (free)"
    NOT_SLAB = "not a slab object"


@dataclass
class Holder:
    """The answer of :func:`holder`."""

    addr: int
    where: Where
    cache: str = ""
    pfn: int = -1
    slab_list: str = ""     # full, partial, free
    index: int = -1         # the object's index in its slab
    offset: int = -1        # the address's byte offset inside its object
    active: int = -1        # the slab's page->active
    num: int = -1
    cpu: int = -1           # the CPU (per-CPU array) or the node (shared, alien array)
    node: int = -1


def _slab_list(cachep: KmemCache, page: Page) -> str:
    n = cachep.node[page.nid]
    if n is None:
        return ""
    for name, lst in (("full", n.slabs_full), ("partial", n.slabs_partial), ("free", n.slabs_free)):
        if page.on_list is lst:
            return name
    return ""


def holder(k: Kernel, addr: int) -> Holder:
    """Which cache, slab, list and array holds ``addr`` now (see the module docstring)."""
    page = k.page_of(addr)
    if page is None or page.slab_cache is None or page.fl is None:
        return Holder(addr, Where.NOT_SLAB)
    c = page.slab_cache
    idx, off = divmod(addr - page.s_mem, c.size)
    if not 0 <= idx < c.num:
        return Holder(addr, Where.NOT_SLAB, c.name, page.pfn)
    objp = page.s_mem + idx * c.size
    h = Holder(addr, Where.CALLER, c.name, page.pfn, _slab_list(c, page), idx, off, page.active, c.num,
               node=page.nid)
    for cpu, ac in enumerate(c.cpu_cache):
        if objp in ac.entry:
            h.where, h.cpu = Where.CPU_ARRAY, cpu
            return h
    for nid, n in enumerate(c.node):
        if n is None:
            continue
        if n.shared is not None and objp in n.shared.entry:
            h.where, h.cpu = Where.SHARED, nid
            return h
        for al in n.alien or ():
            if al is not None and objp in al.entry:
                h.where, h.cpu = Where.ALIEN, nid
                return h
    if idx in page.fl[page.active:c.num]:
        h.where = Where.SLAB
    return h


class KSource(StrEnum):
    """How :class:`KernelView` knows the kernel's address of one of the model's objects."""

    SEEN = "the kernel's object it stood for"
    SLAB = "the same offset in the kernel slab its slab stands for"
    UNKNOWN = "not seen yet: a slab the kernel has not shown"


class KernelView:
    """The model -> kernel direction of a replay's pointer map, for answers in the kernel's addresses.

    ``record`` each allocation the replay makes (the kernel's ``kptr`` is the model's ``mptr``): the model's
    object keeps the kernel's address it last stood for, and the model's slab the kernel's slab it stands
    for, when the two objects sit at the same offset of their slabs (slabs are aligned to their size)."""

    def __init__(self) -> None:
        self.m2k: dict[int, int] = {}
        self.slab: dict[int, int] = {}  # the model slab's head pfn -> the kernel slab's address
        self.kslab: dict[int, tuple[int, int]] = {}  # the kernel slab's address -> (model pfn, slab bytes)
        self.sizes: set[int] = set()

    def record(self, k: Kernel, kptr: int, mptr: int, cachep: KmemCache | None) -> None:
        self.m2k[mptr] = kptr
        if cachep is None:
            return
        page = k.mem_map.virt_to_head_page(mptr)
        if page is None:
            return
        size = PAGE_SIZE << cachep.gfporder
        if kptr % size == mptr % size:
            base = kptr - kptr % size
            self.slab[page.pfn] = base
            self.kslab[base] = (page.pfn, size)
            self.sizes.add(size)

    def model_addr(self, k: Kernel, kaddr: int) -> int:
        """The model's object at the kernel's address ``kaddr`` of a slab the replay paired (0: none), for a
        kernel address the trace never allocated: the same offset in the model's slab, if it still stands for
        that kernel slab."""
        for size in sorted(self.sizes):
            hit = self.kslab.get(kaddr - kaddr % size)
            if hit is None or hit[1] != size or self.slab.get(hit[0]) != kaddr - kaddr % size:
                continue
            page = k.mem_map.pfn_to_page(hit[0])
            if page is not None and page.slab_cache is not None:
                return page.address + kaddr % size
        return 0

    def kernel_addr(self, k: Kernel, mptr: int, cachep: KmemCache) -> tuple[int, KSource]:
        """The kernel's address of the model's object ``mptr`` (0 when unknown), and how it is known."""
        page = k.mem_map.virt_to_head_page(mptr)
        size = PAGE_SIZE << cachep.gfporder
        base = self.slab.get(page.pfn) if page is not None else None
        seen = self.m2k.get(mptr)
        if seen is not None and (base is None or seen - seen % size == base):
            return seen, KSource.SEEN
        if base is not None:
            return base + mptr % size, KSource.SLAB
        return 0, KSource.UNKNOWN


@dataclass
class NextObject:
    """One of the next allocations of :func:`next_objects`."""

    n: int                  # 1 = the next allocation
    addr: int
    pfn: int
    slot: int               # the freelist slot it came from (fresh slabs)
    fresh: int              # 0: a slab that exists now; k >= 1: the k-th slab grown from now on
    #: FREELIST_RANDOM, fresh slab: the object's index is random_seq[(start + slot) % num] (+1 for an
    #: objfreelist cache) for an unknown start; P(start = p) is start_p[p]
    random: bool = False
    #: in a replay: the kernel's address for it (0: none) and how it is known
    kaddr: int = 0
    ksource: KSource | None = None


@dataclass
class NextAnswer:
    cache: str
    cpu: int
    objects: list[NextObject]
    before_fresh: int | None     # allocations before the first from a fresh slab (None: not within N)
    num: int
    seq: list[int] | None = None  # the order a fresh slab's objects follow, up to its start
    seq_learnt: bool = False      # learnt from a trace (else: the model's own random_seq)
    start_p: list[Fraction] = field(default_factory=list)


def next_objects(k: Kernel, cachep: KmemCache, cpu: int, count: int, learnt: list[int] | None = None,
                 limit: int = 100_000, view: KernelView | None = None) -> NextAnswer:
    """The next ``count`` allocations of ``cachep`` on ``cpu`` (kmem_cache_alloc, GFP_KERNEL, nothing freed in
    between), found by making them on ``k`` (and more, up to ``limit``, until one comes from a fresh slab).
    ``learnt``: a random_seq learnt from a trace (up to rotation); ``view``: a replay's pointer map, for the
    kernel's addresses (a slab grown from now on has none yet).  Changes ``k``."""
    if cpu not in k.topo.online_cpus:
        raise ValueError(f"CPU {cpu} is not online (CPUs {sorted(k.topo.online_cpus)})")
    before = {p.pfn for n in cachep.node if n is not None
              for lst in (n.slabs_full, n.slabs_partial, n.slabs_free) for p in lst}
    k.set_cpu(cpu)
    rnd = bool(k.config.CONFIG_SLAB_FREELIST_RANDOM and cachep.num >= 2)
    grown: dict[int, int] = {}
    out: list[NextObject] = []
    first: int | None = None
    i = 0
    while i < count or (first is None and i < limit):
        i += 1
        p = kmem_cache_alloc(cachep, GFP_KERNEL)
        if not p:
            break
        page = k.page_of(p)
        assert page is not None and page.fl is not None
        idx = (p - page.s_mem) // cachep.size
        fresh = 0
        if page.pfn not in before:
            fresh = grown.setdefault(page.pfn, len(grown) + 1)
        # a fresh slab's slot the object left: its place in the order shuffle_freelist wrote
        slot = next((s for s in range(cachep.num) if page.fl[s] == idx), -1) if fresh else -1
        if fresh and first is None:
            first = i - 1
        if i <= count:
            o = NextObject(i, p, page.pfn, slot, fresh, rnd and fresh > 0)
            if view is not None:
                o.kaddr, o.ksource = (0, KSource.UNKNOWN) if fresh else view.kernel_addr(k, p, cachep)
            out.append(o)
    seq = learnt if learnt is not None else cachep.random_seq
    return NextAnswer(cachep.name, cpu, out, first, cachep.num, list(seq) if rnd and seq else None,
                      learnt is not None, start_distribution(cachep.num) if rnd else [])


@dataclass
class ReleaseAnswer:
    cache: str
    pfn: int
    frees: list[int]             # the objects callers hold, freed in this order
    cached: list[int]            # free objects of the slab sitting in arrays (they must drain first)
    released_by_free: bool       # free_block destroyed it (the node held more than free_limit)
    reap_seconds: float | None   # else: the model time until cache_reap gave it back (None: not within)
    reap_passes: int             # the cache_reap runs (any CPU) until then, as the model's timers fire
    free_limit: int
    free_objects: int            # the node's free objects after the frees
    tofree: int                  # drain_freelist's slabs per node pass
    reap_cpu: int = -1           # the CPU whose cache_reap gave it back
    timers: int = 0              # reap timers armed when the question was asked (0: no reap will come)
    overdue: int = 0             # of them, already due (the replay did not run the model's clock)


def _slab_alive(k: Kernel, cachep: KmemCache, pfn: int) -> bool:
    page = k.mem_map.pfn_to_page(pfn)
    return page is not None and page.slab_cache is cachep and page.fl is not None


def until_release(k: Kernel, addr: int, max_seconds: int = 120) -> ReleaseAnswer:
    """Free every object of the slab holding ``addr`` that a caller holds (on the model's current CPU), then
    let the model's clock run: each CPU's reap work fires when the model's own reap timers say
    (``Kernel.reap_timers``, armed by slab_online_cpu and re-armed ~2 s after each cache_reap), and its
    cache_reap drains the arrays and, when the node's ``next_reap`` is due, the free list (drain_freelist,
    within ``free_limit``).  Stops when the slab is given back to the page allocator, or after
    ``max_seconds`` of model time.  Changes ``k``."""
    h = holder(k, addr)
    if h.where is Where.NOT_SLAB:
        raise ValueError(f"{addr:#x} is not an object of a slab")
    c = k.find_cache(h.cache)
    page = k.mem_map.pfn_to_page(h.pfn)
    assert c is not None and page is not None
    objs = [page.s_mem + i * c.size for i in range(c.num)]
    held = [o for o in objs if holder(k, o).where is Where.CALLER]
    cached = [o for o in objs if holder(k, o).where in (Where.CPU_ARRAY, Where.SHARED, Where.ALIEN)]
    n = c.node[page.nid]
    assert n is not None
    for o in held:
        kfree(k, o)
    by_free = not _slab_alive(k, c, h.pfn)
    free_objects = n.free_objects
    start = k.jiffies
    timers = len(k.reap_work.timers)
    overdue = sum(1 for t in k.reap_work.timers if t[0] <= start)
    seconds: float | None = None
    passes = 0
    reap_cpu = -1
    limit = start + max_seconds * k.config.HZ
    while not by_free and k.reap_work.timers:
        when, _, cpu = k.reap_work.timers[0]
        if when > limit:
            break
        # the next timer (advance() runs every reap due by ``when``: this one, or all the overdue ones)
        ran = k.advance(max(when, k.jiffies))
        if not ran:
            break
        passes += ran
        if not _slab_alive(k, c, h.pfn):
            seconds = (k.jiffies - start) / k.config.HZ
            reap_cpu = cpu if ran == 1 else -1
            break
    tofree = (n.free_limit + 5 * c.num - 1) // (5 * c.num)
    return ReleaseAnswer(c.name, h.pfn, held, cached, by_free, seconds, passes, n.free_limit, free_objects, tofree,
                         reap_cpu, timers, overdue)


@dataclass
class SlotUse:
    """One allocation or free of an address, as the trace showed it (and the model's object for it)."""

    line: int
    alloc: bool
    call_site: str
    cache: str
    model_ptr: int = 0


class SlotHistory:
    """Every allocation and free per address of a trace: which later allocation took a freed object's slot.
    ``observe`` each event (``record_model`` the model's object of each allocation, when replayed)."""

    def __init__(self) -> None:
        self.uses: dict[int, list[SlotUse]] = {}
        self.stop_line: int | None = None  # the last line replayed (kslab ask --at-line/--at-marker)

    def observe(self, ev: TraceEvent) -> None:
        kind = ev.kind
        if kind <= KMEM_CACHE_ALLOC_NODE and ev.ptr:
            name = ev.name or (f"kmalloc {ev.bytes_alloc}" if kind <= KMALLOC_NODE else "")
            self.uses.setdefault(ev.ptr, []).append(SlotUse(ev.lineno, True, ev.call_site, name))
        elif kind in (KFREE, KMEM_CACHE_FREE) and ev.ptr > 16:
            self.uses.setdefault(ev.ptr, []).append(SlotUse(ev.lineno, False, ev.call_site, ev.name or ""))

    def record_model(self, kptr: int, mptr: int, line: int | None = None) -> None:
        """The model's object ``mptr`` for the trace's allocation of ``kptr`` at ``line`` (None: the last one
        observed; the replay may have read events ahead of the one it is applying)."""
        for u in reversed(self.uses.get(kptr, ())):
            if u.alloc and (line is None or u.line == line):
                u.model_ptr = mptr
                return
            if line is None or u.line < line:
                return

    def state_at(self, addr: int, line: int | None = None) -> SlotUse | None:
        """The last allocation or free of ``addr`` at or before ``line`` (None: the end of what was seen):
        whether the kernel holds it then (an allocation) or not (a free); None when the trace never showed it."""
        last = None
        for u in self.uses.get(addr, ()):
            if line is not None and u.line > line:
                break
            last = u
        return last

    def after_free(self, addr: int, from_line: int = 0) -> list[tuple[SlotUse, SlotUse | None]]:
        """Each free of ``addr`` at or after ``from_line``, with the allocation that next took the address."""
        uses = self.uses.get(addr, [])
        out: list[tuple[SlotUse, SlotUse | None]] = []
        for i, u in enumerate(uses):
            if not u.alloc and u.line >= from_line:
                nxt = next((v for v in uses[i + 1:] if v.alloc), None)
                out.append((u, nxt))
        return out


def objfreelist(cachep: KmemCache) -> bool:
    """An objfreelist cache: a fresh slab's order starts one entry after its random start."""
    return bool(cachep.flags & CFLGS_OBJFREELIST_SLAB)
