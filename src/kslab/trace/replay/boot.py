"""Booting the model along the trace: the manifest cursor, the caches the trace names, CPU bring-up and the
boot tasks' memory policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ...manifest import Create, Directive, Entry, ManifestBoot, usercopy_window
from ...mm.kernel import Kernel, MemPolicy
from ...mm.page_alloc import qemu_node_ranges
from ...mm.slab_common import find_mergeable, kmem_cache_init_late_one
from ...mm.slab_def import SLAB_HWCACHE_ALIGN, KmemCache
from ..events import FUNC, KMALLOC, KMEM_CACHE_ALLOC, KMEM_CACHE_ALLOC_NODE, TraceEvent
from .options import Internal, ReplaySummary
from .sites import site_function

#: the trace's first events looked at to tell whether it shows the boot (see Boot.start)
HEAD_EVENTS = 4096
#: a kernel object's virtual address minus its physical address (the direct map of x86-64)
DIRECT_MAP = 0xFFFF888000000000


class ManifestCursor:
    """Where the boot along the trace stands in the manifest (a :class:`ManifestBoot`)."""

    def __init__(self, mb: ManifestBoot) -> None:
        self.mb = mb

    def find(self, pred: Callable[[Entry], bool]) -> int | None:
        """The index of the first entry not applied yet that ``pred`` accepts."""
        mb = self.mb
        for i in range(mb.pos, len(mb.entries)):
            if pred(mb.entries[i]):
                return i
        return None

    def advance_through(self, i: int) -> None:
        """Apply the manifest's entries up to and including entry ``i``."""
        mb = self.mb
        while mb.pos <= i:
            mb.step()

    def advance_to(self, pred: Callable[[Entry], bool]) -> bool:
        """Apply the entries up to and including the first one ``pred`` accepts; False (nothing applied)
        when there is none."""
        i = self.find(pred)
        if i is None:
            return False
        self.advance_through(i)
        return True


def _is_directive(what: str, arg: int = -1) -> Callable[[Entry], bool]:
    return lambda e: isinstance(e, Directive) and e.what == what and (arg < 0 or e.arg == arg)


def shows_boot(head: list[TraceEvent]) -> bool:
    """Whether the trace's first events show the boot (kmem_cache_init_late, a cache being created)."""
    return any(
        (ev.kind == FUNC and ev.parent == "kmem_cache_init_late")
        or (ev.kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_ALLOC_NODE) and ev.name == "kmem_cache"
            and site_function(ev.call_site) in ("kmem_cache_create_usercopy", "create_cache"))
        for ev in head)


class Boot:
    """The machine's boot along the trace (the manifest's creations and directives where the trace shows
    them), or before the first event for a trace that starts later."""

    def __init__(self, k: Kernel, manifest: list[Entry] | None, manifest_path: str, summary: ReplaySummary) -> None:
        self.k = k
        self.summary = summary
        self.mb = ManifestBoot(k, list(manifest or []), manifest_path)
        self.cursor = ManifestCursor(self.mb)
        self.cpus = k.config.cpus
        # Whether the trace covers the boot is only known from its first events (see start()).
        self.directive_mode = self.mb.has_directives
        self.booted = False
        self.shows_boot = False
        #: slab pages the model had before the first event of a trace that shows the boot: what else the
        #: kernel's hold is not known
        self.pre_trace_pages: set[int] = set()
        # the node timers of the caches that exist before the first event, as set (see reap.ReapFollower)
        self.early_timers: list[tuple[Any, int]] = []
        self.node_ranges = [(lo, hi, nid) for nid, rs in enumerate(qemu_node_ranges(k.config)) for lo, hi in rs]
        self.policies = TaskPolicies(k, self.kernel_node)

    def start(self, head: list[TraceEvent]) -> None:
        """Decide how the machine boots: along the trace when the trace shows the boot (the manifest's
        directives are then placed where the trace shows them), else completely before the first event."""
        if self.booted:
            return
        self.booted = True
        k = self.k
        boot = shows_boot(head)
        self.shows_boot = boot
        self.directive_mode = self.mb.has_directives and boot
        self.policies.active = boot and k.numa_multi
        if not self.directive_mode:
            k.boot_complete()
            self.mb.run_all()
        if boot:
            self.early_timers = [(n, n.next_reap) for c in k.slab_caches for n in c.node if n is not None]
            self.pre_trace_pages = {page.pfn for c in k.slab_caches for n in c.node if n is not None
                                    for lst in (n.slabs_full, n.slabs_partial, n.slabs_free) for page in lst}

    # ---- CPUs --------------------------------------------------------------------------------------
    def cpu(self, ev: TraceEvent, bring_up: bool = True) -> int:
        """The model's CPU for ``ev`` (one the machine lacks is remapped); on a boot along the trace, a
        CPU not up yet is brought up unless ``bring_up`` is False."""
        cpu = ev.cpu
        if cpu >= self.cpus:
            cpu %= self.cpus
            self.summary.cpu_remapped += 1
        if bring_up and self.directive_mode and cpu not in self.k.topo.online_cpus:
            self.bring_up(cpu)
        return cpu

    def bring_up(self, cpu: int) -> None:
        """Apply the manifest's directives up to this CPU's @cpu_up (creations on the way too)."""
        if not self.cursor.advance_to(_is_directive("cpu_up", cpu)):
            self.k.cpu_up(cpu)

    def cpuup_prepare(self) -> bool:
        """cpuup_prepare() shows in the trace: the manifest's next @cpu_up, if its CPU is not up yet, is
        being prepared now (applied up to it)."""
        i = self.cursor.find(_is_directive("cpu_up"))
        if i is None:
            return False
        e = self.mb.entries[i]
        assert isinstance(e, Directive)
        if e.arg in self.k.topo.online_cpus:
            return False
        self.cursor.advance_through(i)
        return True

    def run_directive(self, what: str, arg: int) -> None:
        """Apply the manifest up to its directive ``what`` (of ``arg``, unless negative); without one,
        ``init_late`` runs kmem_cache_init_late itself."""
        if not self.cursor.advance_to(_is_directive(what, arg)) and what == "init_late":
            self.k.init_late()

    def init_late_step(self) -> None:
        """An ``enable_cpucache <-kmem_cache_init_late`` line: kmem_cache_init_late()'s loop reached its next
        cache (the manifest applied up to its @init_late).  The directive itself completes the loop: after
        its last cache, or when the manifest goes past it first."""
        i = self.cursor.find(_is_directive("init_late"))
        if i is not None and self.k.init_late_pending is None:
            self.cursor.advance_through(i - 1)
        if not kmem_cache_init_late_one(self.k) or not self.k.init_late_pending:
            self.run_directive("init_late", -1)  # the loop is done: kmem_cache_init_late() goes on from it

    def kernel_node(self, ptr: int) -> int:
        """The node of a traced kernel object, from the machine's physical layout (-1 if outside it)."""
        pfn = (ptr - DIRECT_MAP) >> 12
        for start, end, nid in self.node_ranges:
            if start <= pfn < end:
                return nid
        return -1

    # ---- caches ------------------------------------------------------------------------------------
    def advance_to_create(self) -> KmemCache | None:
        """A `struct kmem_cache` was allocated in the trace: apply the manifest up to the next creation
        that makes a new cache (aliases and directives before it apply on the way)."""
        mb = self.mb
        k = self.k
        while mb.pos < len(mb.entries):
            e = mb.entries[mb.pos]
            if isinstance(e, Directive):
                mb.step()
                continue
            assert isinstance(e, Create)
            _useroffset, usersize = (e.useroffset, e.usersize) if e.usersize >= 0 else usercopy_window(e.name, e.size)
            mergeable = not usersize and find_mergeable(k, e.size, e.align, e.flags, e.name,
                                                        True if e.ctor else None) is not None
            mb.step(k.cpu)
            if not mergeable:
                return k.slab_caches[0] if k.slab_caches else None
        return None

    def cache_by_name(self, name: str, ev: TraceEvent) -> KmemCache | None:
        """The cache the trace names: one of the model's, or the manifest's later creation of it (applied
        now), or one inferred from the event."""
        c = self.k.find_cache(name)
        if c is not None:
            return c
        # the manifest may create it later than the trace shows it: look ahead
        if self.cursor.advance_to(lambda e: isinstance(e, Create) and e.name == name):
            return self.k.find_cache(name)
        return self.infer_cache(name, ev)

    def infer_cache(self, name: str | None, ev: TraceEvent) -> KmemCache | None:
        """A cache of the event's object_size and size (one of the model's, else created)."""
        k = self.k
        osz, size = ev.bytes_req, ev.bytes_alloc
        if osz <= 0 or size <= 0 or size < osz:
            return None
        if name is None:
            cands = [c for c in k.slab_caches if c.object_size == osz and c.size == size]
            if len(cands) == 1:
                return cands[0]
            cands = [c for c in k.slab_caches if c.size == size and c.object_size >= osz
                     and not c.name.startswith(("kmalloc-", "dma-kmalloc-"))]
            if cands:
                return cands[0]
            name = f"inferred-{osz}-{size}"
            c = k.find_cache(name)
            if c is not None:
                return c
        for flags in (0, SLAB_HWCACHE_ALIGN):
            c = k.kmem_cache_create_unmerged(name, osz, 0, flags)
            if c is not None and c.size == size:
                self.summary.notes.append(f"inferred cache {name}: object_size {osz} size {size}")
                self.summary.internal[Internal.CACHE_INFERRED] += 1
                return c
            if c is not None:
                k.kmem_cache_destroy(c)
        return None


class PolicyMachine(Protocol):
    """What :class:`TaskPolicies` needs of a machine: SLAB's :class:`Kernel` or SLUB's ``SlubKernel``."""

    @property
    def online_nodes(self) -> list[int]: ...

    def find_cache(self, name: str) -> object | None: ...

    def set_policy(self, cpu: int, pol: MemPolicy | None) -> None: ...

    def clear_policies(self) -> None: ...


class TaskPolicies:
    """The boot tasks' memory policies (pids 0 and 1), while they apply (``active``)."""

    def __init__(self, k: PolicyMachine, kernel_node: Callable[[int], int]) -> None:
        self.k = k
        self.kernel_node = kernel_node
        self.active = False
        self.pid0: MemPolicy | None = None
        self.pid1: MemPolicy | None = None
        self.pid1_seen = False

    def apply(self, ev: TraceEvent, cpu: int) -> None:
        """numa_policy_init() gives the boot task an interleave policy over all nodes: allocations of
        pid 0 (from numa_policy_init until rest_init starts kernel_init) and of pid 1 (which inherits it
        at fork, until kernel_init calls numa_default_policy() before exec'ing /init) alternate nodes
        through alternate_node_alloc().  Other tasks have the default (local) policy."""
        k = self.k
        pid = ev.pid
        pol = None
        if pid == 0 and self.pid0 is None and not self.pid1_seen and k.find_cache("numa_policy") is not None:
            self.pid0 = MemPolicy("interleave", tuple(k.online_nodes), 0)
        if pid == 1 and not self.pid1_seen:
            self.pid1_seen = True
            src = self.pid0
            self.pid1 = MemPolicy("interleave", tuple(k.online_nodes), src.il_prev if src else 0)
            self.pid0 = None
        if pid == 0:
            pol = self.pid0
        elif pid == 1:
            if self.pid1 is not None and site_function(ev.call_site) == "alloc_bprm":
                # exec'ing /init: kernel_init() called numa_default_policy() just before.  (The comm
                # printed with each line is the task's last name, so it cannot tell when exec happened.)
                self.pid1 = None
                self.active = False
                k.clear_policies()
            pol = self.pid1
        k.set_policy(cpu, pol)
        if pol is not None:
            # The interleave rotor also turns for allocations the trace does not show (interrupt
            # context does not use it; some boot allocations have no event), so take its phase from
            # the node the kernel's object came from, which the traced pointer tells.
            kn = self.kernel_node(ev.ptr)
            if kn >= 0 and ev.kind in (KMALLOC, KMEM_CACHE_ALLOC):
                nodes = sorted(pol.nodes)
                if kn in nodes:
                    pol.set_interleave_phase(nodes[nodes.index(kn) - 1])
