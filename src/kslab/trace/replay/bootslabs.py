"""Slabs older than the trace: where the kernel's first pointers into them say their objects stand.

A trace that shows the boot starts after kmem_cache_init(): the kernel has already handed out objects of
some caches (before the trace's events were enabled), and its slabs of those caches are partly used; the
model's boot has not made those allocations.  The trace tells how far each such slab was used: when a
``cache_alloc_refill`` that grew no slab (no ``cache_grow_begin`` under it) hands out an object of a slab
whose pages no traced grow gave (no ``mm_page_alloc`` inside a ``cache_grow_begin``/``cache_grow_end``
pair named them; only after the trace showed a grow's page can it tell)
and that no earlier event of the trace pointed into, that slab is one of those older
than the trace; the object's byte offset in it (``s_mem + index * size``) gives its index, and the
refill took its batch in the slab's freelist order, so the objects before the batch were allocated
before the trace began.

``BootSlabs.before_alloc`` lines the model's slab up with it, until the first sync: when the model's
refill will take its batch from one slab too (its array and shared array empty, the batch within the
slab), and that slab is one the model had before the trace (or an empty one, or none: a slab is then
grown empty, standing for the kernel's), as many of its next objects as put the kernel's index at the
top of the batch are taken as allocated objects of unknown identity (placeholders; the sync counts
them).  The kernel's slab and the model's are then paired: a free of an object older than the trace on
that kernel slab frees the placeholder at the same index (``BootSlabs.unknown_free``).

Left alone: CONFIG_SLAB_FREELIST_RANDOM (a fresh slab's order is random, see shuffle.py), a slab whose
colour differs from the model's (the offset is not ``s_mem + index * size`` of the model's slab), a
model slab ahead of the kernel's, a batch spread over two slabs, and the ``____cache_alloc_node`` path.
Seen on the captures R2 (kmalloc-32: 76 objects before the first traced one), U6 and debug R3 (kmalloc-64).
``ReplaySummary.followed`` counts the slabs lined up and the objects taken.
"""

from __future__ import annotations

from ...mm.kernel import Kernel
from ...mm.page import PAGE_SIZE, Page
from ...mm.slab.adopt import adopt_from_slab, grow_stand_in
from ...mm.slab_def import BATCHREFILL_LIMIT, KmemCache
from ..events import TraceEvent
from .boot import DIRECT_MAP, Boot
from .options import Followed, ReplaySummary
from .placeholders import Placeholders


class BootSlabs:
    """The kernel's slabs older than the trace, as the first pointers into them show (module docstring)."""

    def __init__(self, k: Kernel, boot: Boot, placeholders: Placeholders, summary: ReplaySummary) -> None:
        self.k = k
        self.boot = boot
        self.placeholders = placeholders
        self.summary = summary
        self.active = not k.config.CONFIG_SLAB_FREELIST_RANDOM
        #: the trace showed mm_page_alloc inside a grow: before that, a slab a traced grow gave cannot be
        #: told from an older one
        self.saw_grow_pages = False
        #: kernel slab addresses whose pages a traced grow gave
        self.grown: set[int] = set()
        #: kernel slab addresses an event pointed into
        self.seen: set[int] = set()
        #: kernel slab address -> the model's slab standing for it
        self.pairs: dict[int, Page] = {}
        #: model slabs grown to stand for kernel slabs older than the trace
        self.stand_ins: set[int] = set()

    def grow_page(self, pfn: int, order: int) -> None:
        """A traced grow got its pages at ``pfn`` (mm_page_alloc inside cache_grow_begin/end)."""
        self.saw_grow_pages = True
        self.grown.add((pfn << 12) + DIRECT_MAP)
        if order:
            self.grown.add(((pfn & ~((1 << order) - 1)) << 12) + DIRECT_MAP)

    def slab_addr(self, cachep: KmemCache, kptr: int) -> int:
        """The kernel's slab an object pointer lies in (a slab's pages are a block aligned to its size)."""
        return kptr & ~((PAGE_SIZE << cachep.gfporder) - 1)

    def before_alloc(self, ev: TraceEvent, cpu: int, cachep: KmemCache | None, refilled: bool, grew: bool) -> None:
        """An allocation about to be replayed on ``cpu`` before the first sync: line the model's slab up with
        the kernel's when the kernel's refill (``refilled``, without a grow: ``grew``) took from a slab older
        than the trace."""
        if cachep is None or not self.active or not self.saw_grow_pages or not self.boot.shows_boot:
            return
        addr = self.slab_addr(cachep, ev.ptr)
        paired = self.pairs.get(addr)
        if addr in self.seen and paired is None:
            return
        self.seen.add(addr)
        if not refilled or grew or addr in self.grown:
            return
        k = self.k
        if not cachep.cpu_cache or cpu in k.replay_hooks.grow_outcomes:
            return
        nid = k.topo.cpu_to_node[cpu]
        if k.numa_multi and self.boot.kernel_node(ev.ptr) != nid:
            return  # the refill is the CPU's own node's (an interleave policy went to its own node too)
        ac = cachep.cpu_cache[cpu]
        n = cachep.node[nid]
        if ac.entry or n is None or (n.shared is not None and n.shared.entry) or k.replay_hooks.race_grow is cachep:
            return
        batch = ac.batchcount
        if not ac.touched and batch > BATCHREFILL_LIMIT:
            batch = BATCHREFILL_LIMIT
        page = n.slabs_partial.first() or n.slabs_free.first()
        if paired is not None:
            # a slab lined up before: objects the kernel skipped were allocated without an event
            if page is paired:
                self._line_up(cachep, page, ev.ptr - (cachep.obj_offset if k.debug else 0) - addr, batch,
                              cachep.obj_offset if k.debug else 0)
            return
        fresh = page is None
        if page is not None and not (page.pfn in self.boot.pre_trace_pages or page.pfn in self.stand_ins
                                     or page.active == 0):
            return
        if page is None:
            page = grow_stand_in(cachep, n.nid)
            if page is None:
                return
        off = cachep.obj_offset if k.debug else 0
        lined = self._line_up(cachep, page, ev.ptr - off - addr, batch, off)
        if fresh or lined:
            self.stand_ins.add(page.pfn)
            self.boot.pre_trace_pages.add(page.pfn)
        if lined:
            self.pairs[addr] = page

    def _line_up(self, cachep: KmemCache, page: Page, koff: int, batch: int, off: int) -> bool:
        """Take as placeholders the objects of the model's ``page`` ahead of the one at the kernel's offset
        ``koff``, so that a refill of ``batch`` objects ends on it; False when that cannot be."""
        colour = page.s_mem - page.address
        idx, rem = divmod(koff - colour, cachep.size)
        fl = page.fl
        if rem or not 0 <= idx < cachep.num or fl is None:
            return False
        free = list(fl[page.active:cachep.num])
        if idx not in free:
            return False
        pad = free.index(idx) - (batch - 1)
        if pad < 0 or pad + batch > len(free):
            return False
        if pad:
            n = cachep.node[page.nid]
            assert n is not None
            with self.k.unobserved():
                objs = adopt_from_slab(cachep, n, page, pad, off)
            self.placeholders.pool(cachep).extend(objs)
            self.summary.placeholders[cachep.name] += len(objs)
            self.summary.followed[Followed.BOOT_SLAB_OBJECTS] += len(objs)
        self.summary.followed[Followed.BOOT_SLAB_LINED] += 1
        return True

    def unknown_free(self, cachep: KmemCache, kptr: int) -> int:
        """The placeholder standing for ``kptr``, an object older than the trace freed now (before the first
        sync), on the model's slab paired with the kernel's: one taken as allocated up to its index (a slab
        no event pointed into yet, older than the trace, is paired with a slab grown to stand for it: its
        objects were taken in the freelist's order, so those up to this one were allocated before the trace).
        Taken out of the pool; 0 when there is none."""
        if not self.active or not self.saw_grow_pages or not self.boot.shows_boot:
            return 0
        addr = self.slab_addr(cachep, kptr)
        page = self.pairs.get(addr)
        k = self.k
        off = cachep.obj_offset if k.debug else 0
        if page is None:
            if addr in self.seen or addr in self.grown:
                return 0
            self.seen.add(addr)
            page = self._stand_in(cachep, kptr - off - addr, self.boot.kernel_node(kptr))
            if page is None:
                return 0
            self.pairs[addr] = page
            self.summary.followed[Followed.BOOT_SLAB_LINED] += 1
        if page.slab_cache is not cachep or page.fl is None:
            return 0
        idx, rem = divmod(kptr - off - addr - (page.s_mem - page.address), cachep.size)
        if rem or not 0 <= idx < cachep.num:
            return 0
        pool = self.placeholders.pool(cachep)
        free = page.fl[page.active:cachep.num]
        if idx in free:  # not taken yet: it and those before it in the freelist were allocated before the trace
            n = cachep.node[page.nid]
            assert n is not None
            with k.unobserved():
                objs = adopt_from_slab(cachep, n, page, free.index(idx) + 1, off)
            pool.extend(objs)
            self.summary.placeholders[cachep.name] += len(objs)
            self.summary.followed[Followed.BOOT_SLAB_OBJECTS] += len(objs)
        mptr = page.s_mem + idx * cachep.size + off
        if mptr not in pool:
            return 0
        pool.remove(mptr)
        self.summary.followed[Followed.BOOT_SLAB_FREES] += 1
        return mptr

    def _stand_in(self, cachep: KmemCache, koff: int, nid: int) -> Page | None:
        """A slab grown empty on ``nid`` to stand for a kernel slab older than the trace whose object at
        offset ``koff`` is freed; None when the slab the model would grow has another colour than the
        offset allows, or no pages are left."""
        k = self.k
        if nid < 0 or nid >= len(cachep.node) or cachep.node[nid] is None:
            nid = k.numa_node
        n = cachep.node[nid]
        if n is None or k.cpu in k.replay_hooks.grow_outcomes:
            return None
        colour = 0
        if cachep.colour:  # the colour cache_grow_begin() gives the next slab
            nxt = n.colour_next + 1
            colour = (0 if nxt >= cachep.colour else nxt) * cachep.colour_off
        if (koff - colour) % cachep.size or not 0 <= (koff - colour) // cachep.size < cachep.num:
            return None
        page = grow_stand_in(cachep, nid)
        if page is not None:
            self.stand_ins.add(page.pfn)
            self.boot.pre_trace_pages.add(page.pfn)
        return page
