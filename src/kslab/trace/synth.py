"""Seeded synthetic kmem traces, for benchmarks and scale tests.

A :class:`SynthTrace` produces a stream of :class:`~kslab.trace.events.TraceEvent` records (and the
same stream as ftrace text, in the layout of the oracle 5.10 kernels) with a realistic mix:

* sizes: kmalloc requests mostly small (8-256 bytes), with a long tail up to 32 KiB; named caches
  (``dentry``, ``filp``, ``vm_area_struct``, ...) of fixed object sizes;
* kinds: ``kmalloc``/``kmem_cache_alloc`` and their ``_node`` variants, ``kfree``/``kmem_cache_free``
  (a few ``kfree(NULL)``), and the function tracer's ``cache_reap`` line every 2 s on each CPU;
* gfp: mostly GFP_KERNEL, some ``__GFP_ZERO``, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL_ACCOUNT;
* lifetimes: most objects die within tens of events, some within thousands, a few live for
  millions of events, so the number of live objects rises to a plateau and stays there;
* CPUs and nodes: tasks run in bursts on each CPU; most frees happen on the allocating CPU, some
  on another one (on a 2-node machine, half of those are remote: alien frees);
* pointers: each cache hands out addresses from its own pages, reusing the most recently freed
  address of the same CPU first (as SLAB's per-CPU LIFO arrays do), else the oldest address freed
  anywhere, and takes new pages only when it has no freed address left: the set of addresses in
  use stays bounded however long the trace, as a kernel's memory is.

Everything is drawn from one ``random.Random(seed)``: the same arguments give the same trace.
Nothing is held but the live objects and the freed addresses, so traces of any length
stream (``kslab`` itself never needs the whole trace either).

The text has no header line, so ``lineno`` of the records equals the line number in the text, and
parsing the text with :func:`kslab.trace.ftrace.iter_events` gives back equal records.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterator
from typing import IO, TypeVar

from ..mm.gfp import __GFP_ZERO, GFP_ATOMIC, GFP_KERNEL, GFP_KERNEL_ACCOUNT, GFP_NOWAIT, show_gfp_flags
from ..mm.slab.kmalloc import kmalloc_index, kmalloc_info
from .events import (
    FUNC,
    KFREE,
    KMALLOC,
    KMALLOC_NODE,
    KMEM_CACHE_ALLOC,
    KMEM_CACHE_ALLOC_NODE,
    KMEM_CACHE_FREE,
    TraceEvent,
)

__all__ = ["SYNTH_VERSION", "SynthTrace", "format_event", "synth_events", "synth_lines", "write_trace"]

PAGE_OFFSET = 0xFFFF888000000000

_T = TypeVar("_T")

# (weight, smallest, largest) bytes_req of kmalloc calls
KMALLOC_SIZES: tuple[tuple[float, int, int], ...] = (
    (30, 8, 32), (20, 33, 64), (12, 65, 128), (10, 129, 256), (9, 257, 512), (7, 513, 1024),
    (5, 1025, 2048), (4, 2049, 4096), (2, 4097, 8192), (1, 8193, 32768),
)
# (weight, name, object_size): caches created on demand by the replay (object_size == size)
NAMED_CACHES: tuple[tuple[float, str, int], ...] = (
    (18, "dentry", 192), (10, "filp", 256), (10, "vm_area_struct", 200), (8, "anon_vma_chain", 64),
    (6, "anon_vma", 88), (9, "buffer_head", 104), (6, "inode_cache", 600), (5, "radix_tree_node", 576),
    (7, "skbuff_head_cache", 224), (4, "pid", 128), (4, "cred_jar", 192), (3, "sigqueue", 80),
    (3, "names_cache", 4096), (2, "task_struct", 3904), (5, "ext4_inode_cache", 1080),
)
# (weight, gfp): the flags of allocations
GFP_MIX: tuple[tuple[float, int], ...] = (
    (60, GFP_KERNEL), (22, GFP_KERNEL | __GFP_ZERO), (10, GFP_ATOMIC), (5, GFP_NOWAIT | __GFP_ZERO),
    (3, GFP_KERNEL_ACCOUNT),
)
# (weight, mean lifetime in events): short-lived, medium, long-lived objects; the number of live objects
# levels off at about half the mean lifetime (~10,000) after about 1M events
LIFETIMES: tuple[tuple[float, float], ...] = ((70, 24.0), (22, 2_000.0), (8, 250_000.0))

#: Changes whenever the same arguments would give another trace (benchmarks name their files with it).
SYNTH_VERSION = 3

ALLOC_SITES = ("__alloc_skb", "kmalloc_reserve", "d_alloc", "alloc_inode", "getname_flags", "vm_area_alloc",
               "anon_vma_fork", "alloc_buffer_head", "__kernfs_new_node", "load_elf_phdrs", "single_open",
               "tty_buffer_alloc", "sk_prot_alloc", "alloc_pid", "prepare_creds", "ext4_find_extent",
               "security_file_alloc", "kvmalloc_node", "bpf_map_area_alloc", "alloc_fdtable", "sock_alloc_inode",
               "__d_alloc", "radix_tree_node_alloc", "ext4_alloc_inode", "alloc_empty_file", "dup_task_struct")
FREE_SITES = ("kfree_skbmem", "skb_release_data", "putname", "vm_area_free", "ext4_ext_map_blocks",
              "single_release", "free_pid", "put_cred_rcu", "__d_free", "kernfs_put", "tty_buffer_free",
              "sk_prot_free", "kvfree", "free_fdtable_rcu", "file_free_rcu", "i_callback", "free_task",
              "unlink_anon_vmas", "free_buffer_head", "ext4_free_in_core_inode")
TASKS = (("bash", 1021), ("kworker/u8:2", 57), ("systemd-journal", 289), ("sshd", 883), ("nginx", 1402),
         ("postgres", 1533), ("find", 2101), ("tar", 2204), ("python3", 2310), ("rcu_sched", 11),
         ("<idle>", 0), ("make", 3120), ("cc1", 3188), ("git", 3301), ("java", 4410), ("containerd", 702))


class _Cache:
    """Address supply of one cache of the synthetic kernel: its own pages, per-CPU LIFOs of freed
    addresses."""

    __slots__ = ("size", "per_slab", "slab_bytes", "base", "next", "left", "lifo")

    def __init__(self, size: int, cpus: int) -> None:
        self.size = size
        slab_bytes = 4096
        while slab_bytes < size * 8 and slab_bytes < 32768:
            slab_bytes <<= 1
        self.slab_bytes = slab_bytes
        self.per_slab = max(1, slab_bytes // size)
        self.base = 0
        self.next = 0
        self.left = 0
        self.lifo: list[deque[int]] = [deque() for _ in range(cpus)]


class SynthTrace:
    """A seeded synthetic trace of ``events`` events; iterate it for TraceEvents, or see ``lines()``."""

    def __init__(self, events: int, *, seed: int = 1, cpus: int = 4, nodes: int = 2,
                 lifetimes: tuple[tuple[float, float], ...] = LIFETIMES, reap_every: float = 2.0,
                 event_gap_us: float = 2.0) -> None:
        if cpus < 1 or nodes < 1 or nodes > cpus:
            raise ValueError("synthetic trace: need 1 <= nodes <= cpus")
        self.events = events
        self.seed = seed
        self.cpus = cpus
        self.nodes = nodes
        self.lifetimes = lifetimes
        self.reap_every = reap_every
        self.event_gap_us = event_gap_us
        #: live objects at the end of the last iteration (for scale tests)
        self.live = 0
        self.max_live = 0

    def __iter__(self) -> Iterator[TraceEvent]:
        return self._generate()

    def lines(self) -> Iterator[str]:
        """The trace as ftrace text lines (without newlines)."""
        for ev in self._generate():
            yield format_event(ev)

    # ------------------------------------------------------------------------------------------------
    def _generate(self) -> Iterator[TraceEvent]:  # one loop, locals for speed
        rnd = random.Random(self.seed)
        random_ = rnd.random
        expo = rnd.expovariate
        cpus, nodes = self.cpus, self.nodes
        n_total = self.events

        # the choices, flattened into cumulative tables (bisect-free: small linear scans)
        def table(items: tuple[tuple[float, _T], ...]) -> list[tuple[float, _T]]:
            tot = sum(w for w, _ in items)
            acc = 0.0
            out = []
            for w, v in items:
                acc += w / tot
                out.append((acc, v))
            out[-1] = (1.0, out[-1][1])
            return out

        def pick(tab: list[tuple[float, _T]]) -> _T:
            x = random_()
            for p, v in tab:
                if x < p:
                    return v
            return tab[-1][1]

        km_sizes = table(tuple((w, (lo, hi)) for w, lo, hi in KMALLOC_SIZES))
        named = table(tuple((w, (name, osz)) for w, name, osz in NAMED_CACHES))
        gfps = table(GFP_MIX)
        lives = table(tuple((w, mean) for w, mean in self.lifetimes))

        caches: dict[object, _Cache] = {}
        next_pfn = [0x10000]

        def new_address(c: _Cache) -> int:
            if not c.left:
                pages = c.slab_bytes >> 12
                c.base = PAGE_OFFSET + (next_pfn[0] << 12)
                next_pfn[0] += pages
                c.next = 0
                c.left = c.per_slab
            c.left -= 1
            addr = c.base + c.next * c.size
            c.next += 1
            return addr

        sites = {}
        for i, s in enumerate(ALLOC_SITES):
            sites[s] = f"{s}+{0x1a + 7 * i:#x}/{0x80 + 0x20 * (i % 9):#x}"
        free_sites = [f"{s}+{0x12 + 5 * i:#x}/{0x60 + 0x20 * (i % 7):#x}" for i, s in enumerate(FREE_SITES)]
        alloc_site_list = [sites[s] for s in ALLOC_SITES]
        n_sites = len(alloc_site_list)

        task_of = [TASKS[(c * 5) % len(TASKS)] for c in range(cpus)]
        # live objects by time of death: (death, ptr, cpu, cache key, free site); ptr is unique among the
        # live objects, so the tuples never compare further than that
        pending: list[tuple[int, int, int, object, int]] = []
        push, pop = heapq.heappush, heapq.heappop
        live = 0
        max_live = 0
        us = 1_000_000  # time in microseconds: the trace starts at 1 s
        reap_us = int(self.reap_every * 1_000_000)
        next_reap = [us + 700_000 + 3_000 * c for c in range(cpus)]
        cpu = 0
        gap = self.event_gap_us
        n = 0
        Event = TraceEvent
        try:
            while n < n_total:
                us += 1 + int(expo(1.0 / gap)) if gap > 1 else 1
                if random_() < 0.03:  # another CPU's burst
                    cpu = int(random_() * cpus)
                    if random_() < 0.3:
                        task_of[cpu] = TASKS[int(random_() * len(TASKS))]
                ts = us / 1e6
                if us >= next_reap[cpu]:  # the CPU's reap work (kworker) runs
                    next_reap[cpu] += reap_us
                    n += 1
                    yield Event(FUNC, n, cpu, ts, f"kworker/{cpu}:1", 40 + cpu,
                                "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, "cache_reap", "process_one_work")
                    continue
                comm, pid = task_of[cpu]
                n += 1
                if pending and pending[0][0] <= n:
                    _, ptr, acpu, key, fsite = pop(pending)
                    live -= 1
                    fcpu = acpu if random_() < 0.8 else int(random_() * cpus)
                    caches[key].lifo[fcpu].append(ptr)
                    if key.__class__ is not str:
                        yield Event(KFREE, n, fcpu, ts, comm, pid, free_sites[fsite], ptr)
                    else:
                        yield Event(KMEM_CACHE_FREE, n, fcpu, ts, comm, pid, free_sites[fsite], ptr, 0, 0, 0, -1,
                                    key)
                    continue
                x = random_()
                if x < 0.004:  # kfree(NULL)
                    yield Event(KFREE, n, cpu, ts, comm, pid, free_sites[int(random_() * len(free_sites))], 0)
                    continue
                gfp = pick(gfps)
                node = -1
                if x < 0.60:
                    lo, hi = pick(km_sizes)
                    req = lo + int(random_() * (hi - lo + 1))
                    idx = kmalloc_index(req)
                    alloc = kmalloc_info(idx)[1]
                    key = ("kmalloc", alloc)
                    name: str | None = None
                    kind = KMALLOC
                    if x < 0.03:
                        kind = KMALLOC_NODE
                        node = int(random_() * nodes) if random_() < 0.5 else -1
                    site = alloc_site_list[idx % n_sites]
                else:
                    name, req = pick(named)
                    alloc = req
                    key = name
                    kind = KMEM_CACHE_ALLOC
                    if x > 0.98:
                        kind = KMEM_CACHE_ALLOC_NODE
                        node = int(random_() * nodes) if random_() < 0.5 else -1
                    site = alloc_site_list[hash_name(name) % n_sites]
                c = caches.get(key)
                if c is None:
                    c = caches[key] = _Cache(alloc, cpus)
                lifo = c.lifo[cpu]
                if lifo and random_() < 0.97:
                    ptr = lifo.pop()
                else:
                    # the oldest address freed on any CPU (it went back to the slabs), and a new one only
                    # when the cache has none: the addresses in use stay bounded, as a kernel's RAM is
                    ptr = 0
                    for other in c.lifo:
                        if other:
                            ptr = other.popleft()
                            break
                    if not ptr:
                        ptr = new_address(c)
                mean = pick(lives)
                death = n + 1 + int(expo(1.0 / mean))
                push(pending, (death, ptr, cpu, key, int(random_() * len(free_sites))))
                live += 1
                if live > max_live:
                    max_live = live
                if kind == KMALLOC:
                    yield Event(KMALLOC, n, cpu, ts, comm, pid, site, ptr, req, alloc, gfp)
                elif kind == KMALLOC_NODE:
                    yield Event(KMALLOC_NODE, n, cpu, ts, comm, pid, site, ptr, req, alloc, gfp, node)
                else:
                    yield Event(kind, n, cpu, ts, comm, pid, site, ptr, req, alloc, gfp, node, name)
        finally:
            self.live = live
            self.max_live = max_live


def hash_name(name: str) -> int:
    """A stable (not salted) small hash of a cache name."""
    h = 0
    for ch in name:
        h = (h * 31 + ord(ch)) & 0xFFFF
    return h


def synth_events(events: int, **kw: object) -> Iterator[TraceEvent]:
    """``SynthTrace(events, **kw)`` as an iterator of TraceEvents."""
    return iter(SynthTrace(events, **kw))  # type: ignore[arg-type]


def synth_lines(events: int, **kw: object) -> Iterator[str]:
    """``SynthTrace(events, **kw)`` as ftrace text lines (no newlines)."""
    return SynthTrace(events, **kw).lines()  # type: ignore[arg-type]


_KIND_TEXT = {KMALLOC: "kmalloc", KMALLOC_NODE: "kmalloc_node", KMEM_CACHE_ALLOC: "kmem_cache_alloc",
              KMEM_CACHE_ALLOC_NODE: "kmem_cache_alloc_node", KFREE: "kfree", KMEM_CACHE_FREE: "kmem_cache_free"}
_gfp_text: dict[int, str] = {}


def format_event(ev: TraceEvent) -> str:
    """One event as the oracle 5.10 kernel's ftrace prints it (``trace_clock=local``, irq-info column)."""
    us = round(ev.ts * 1_000_000)
    head = f"{ev.comm:>16}-{ev.pid:<7} [{ev.cpu:03d}] .... {us // 1_000_000:5d}.{us % 1_000_000:06d}: "
    kind = ev.kind
    if kind == FUNC:
        return f"{head}{ev.text} <-{ev.parent}"
    if kind == KFREE:
        return f"{head}kfree: call_site={ev.call_site} ptr={ev.ptr:016x}"
    if kind == KMEM_CACHE_FREE:
        return f"{head}kmem_cache_free: call_site={ev.call_site} ptr={ev.ptr:016x} name={ev.name}"
    gfp = _gfp_text.get(ev.gfp)
    if gfp is None:
        gfp = _gfp_text[ev.gfp] = show_gfp_flags(ev.gfp)
    text = (f"{head}{_KIND_TEXT[kind]}: call_site={ev.call_site} ptr={ev.ptr:016x} bytes_req={ev.bytes_req} "
            f"bytes_alloc={ev.bytes_alloc} gfp_flags={gfp}")
    if kind in (KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE):
        text += f" node={ev.node}"
    if ev.name is not None:
        text += f" name={ev.name}"
    return text


def write_trace(out: IO[str], events: int, **kw: object) -> int:
    """Write a synthetic trace as ftrace text to ``out``; returns the number of lines."""
    n = 0
    buf: list[str] = []
    for line in synth_lines(events, **kw):
        buf.append(line)
        if len(buf) >= 8192:
            out.write("\n".join(buf))
            out.write("\n")
            n += len(buf)
            buf.clear()
    if buf:
        out.write("\n".join(buf))
        out.write("\n")
        n += len(buf)
    return n
