"""The machine: what the kernel keeps in globals, plus the entry points a caller uses.

A :class:`Kernel` owns the page allocator, ``slab_caches``, ``kmalloc_caches``, ``slab_state``,
CPU and node masks, ``jiffies``, dmesg and the reap timers.  Every entry point takes the CPU it
runs on; internal functions read the current CPU from ``k.cpu`` as the kernel reads
``smp_processor_id()``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .config import MachineConfig
from .errors import ConfigError, KernelBug
from .gfp import GFP_KERNEL
from .memory import Memory
from .page import MemMap, Page
from .page_alloc import PageAllocator
from .replay_hooks import INITIAL_JIFFIES, ReplayHooks
from .slab import alloc as _alloc
from .slab import free as _free
from .slab import kmalloc as _km
from .slab import reap as _reap
from .slab_def import DOWN, FULL, KmemCache

ExplainSink = Any  # an object with .step(func, key, **values)

# print_tainted(): one column per flag of include/linux/kernel.h's TAINT_* bits, in bit order
# (set letter, clear letter); a clean P column shows 'G'.
TAINT_FLAGS = (("P", "G"), ("F", " "), ("S", " "), ("R", " "), ("M", " "), ("B", " "), ("U", " "), ("D", " "),
               ("A", " "), ("W", " "), ("C", " "), ("I", " "), ("O", " "), ("E", " "), ("L", " "), ("K", " "),
               ("X", " "), ("T", " "))
KERNEL_TEXT_START = 0xFFFFFFFF81000000  # x86_64 _text without KASLR: where ksym() places callers


@dataclass
class MemPolicy:
    """A task's NUMA memory policy (mm/mempolicy.c): local, preferred, interleave or bind."""

    mode: str = "local"
    nodes: tuple[int, ...] = ()
    il_prev: int = -1

    def set_interleave_phase(self, prev: int) -> None:
        """The interleave rotor's last node (il_prev): the next interleaved allocation takes the next one."""
        self.il_prev = prev

    def slab_node(self, k: Kernel, node: int) -> int:
        """mempolicy_slab_node() for this policy."""
        if self.mode == "preferred" and self.nodes:
            return self.nodes[0]
        if self.mode == "interleave" and self.nodes:
            nodes = sorted(self.nodes)
            nxt = next((n for n in nodes if n > self.il_prev), nodes[0])
            self.il_prev = nxt
            return nxt
        if self.mode == "bind" and self.nodes:
            return node if node in self.nodes else min(self.nodes)
        return node


@dataclass
class Misuse:
    """One misuse the model detected (the debug checks, hardened checks, bad frees).

    ``kind`` names the misuse (``double_free``, ``use_after_free``, ``overflow``,
    ``double_free_or_overflow``, ``wrong_cache``, ``not_slab``, ``bad_pointer``, ``destroy_busy``, ...),
    ``check`` the kernel function that caught it (``verify_redzone_free``, ``slab_put_obj``,
    ``check_poison_obj``, ``__free_one``, ``cache_from_obj``, ...).  ``ptr`` is the object as its user
    sees it.  ``messages`` are the dmesg lines of this report, in order; ``last_user`` is the caller
    recorded in the object's SLAB_STORE_USER word before the check (0 when the cache does not store
    it); ``caller`` is the ``caller`` argument of the operation that found the misuse (0 if unknown).
    """

    kind: str
    cache: str
    ptr: int
    cpu: int
    jiffies: int
    messages: list[str] = field(default_factory=list)
    last_user: int = 0
    caller: int = 0
    check: str = ""


class Kernel:
    """A booted 5.10 SLAB machine.  ``Kernel(config)`` boots it completely unless ``boot=False``."""

    def __init__(self, config: MachineConfig | None = None, *, boot: bool = True) -> None:
        self.config = config = config or MachineConfig()
        self.debug = config.CONFIG_DEBUG_SLAB
        self.numa = config.CONFIG_NUMA
        self.nr_cpu_ids = config.cpus
        self.nr_node_ids = config.nr_nodes
        self.online_nodes = list(range(config.nr_nodes))
        self.numa_multi = len(self.online_nodes) > 1
        self.use_alien_caches = config.use_alien_caches
        self.slab_nomerge = config.slab_nomerge or not config.CONFIG_SLAB_MERGE_DEFAULT
        self.slab_max_order = config.effective_slab_max_order
        self.cpu_to_node = [config.cpu_to_node(c) for c in range(config.cpus)]
        self.node_cpus: list[set[int]] = [set() for _ in self.online_nodes]
        self.online_cpus: set[int] = set()
        self.mem_map = MemMap()
        self.page_alloc = PageAllocator(config, self.mem_map)
        self.memory = Memory(self.mem_map)
        self.slab_caches: list[KmemCache] = []
        self.kmalloc_caches: list[list[KmemCache | None]] = [[None] * 23 for _ in range(3)]
        # mm/slab_common.c's static size_index[] until setup_kmalloc_cache_index_table() rewrites it:
        # kmalloc_slab() consults it while kmalloc-128 (INDEX_NODE) is being created
        self.size_index: list[int] = [3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2]
        self.slab_state = DOWN
        self.kmem_cache: KmemCache | None = None
        self.cache_by_addr: dict[int, KmemCache] = {}
        # find_cache(): name -> cache, valid while slab_caches has _find_len entries and _find_head first
        self._find_memo: dict[str, KmemCache] = {}
        self._find_len = 0
        self._find_head: KmemCache | None = None
        self.cpu = 0
        self.numa_node = self.cpu_to_node[0]
        self.jiffies = 0
        self.slab_reap_node = [0] * config.cpus
        self.reap_timers: list[tuple[int, int, int]] = []  # heap of (jiffies, seq, cpu)
        self._reap_seq = 0
        self.reap_runs = 0
        self.explain: ExplainSink | None = None
        self.event_hook: Callable[..., None] | None = None
        self.sk_memalloc_socks = False
        self.in_interrupt = False
        self.cpuset_slab_spread = False
        self._spread_rotor = -1
        self.policies: dict[int, MemPolicy] = {}
        self.dmesg: list[str] = []
        self.misuse: list[Misuse] = []
        self._reports: list[Misuse] = []  # misuse reports being collected (misuse_report)
        self.symbols: dict[int, tuple[str, int]] = {}  # ksym(): address -> (name, size)
        self.tainted: set[str] = set()
        self._warned: set[str] = set()
        self.creation_log: list[str] = []
        self.rcu_callbacks: list[Callable[[], None]] = []
        self.reap_offsets: dict[str, int] = {}
        #: what a replay of a real trace tells the model (race_grow, the kernel's cache addresses...)
        self.replay_hooks = ReplayHooks(self)
        self.boot_cpu_in_node = False
        self.init_late_done = False
        #: kmem_cache_init_late()'s caches not reached yet, while a replay steps through it (else None)
        self.init_late_pending: list[KmemCache] | None = None
        # get_random_int/get_random_long: one seeded stream per machine (a real kernel's cannot be predicted)
        self.crng = random.Random(config.random_seed)
        if boot:
            self.boot_early()
            self.boot_complete()

    # ---- boot ----------------------------------------------------------------------------------
    def boot_early(self) -> None:
        """start_kernel() up to kmem_cache_init(): only the boot CPU is online."""
        from .slab_common import kmem_cache_init  # noqa: PLC0415
        self.online_cpus = {0}
        if not self.numa:
            self.node_cpus[0] = self.online_cpus
        self.set_cpu(0)
        kmem_cache_init(self)

    def init_late(self) -> None:
        """kmem_cache_init_late(): every existing cache gets its real tunables."""
        from .slab_common import kmem_cache_init_late  # noqa: PLC0415
        if self.init_late_done:
            return
        saved = self.set_cpu(0)
        kmem_cache_init_late(self)
        self.init_late_done = True
        _reap.init_reap_node(self, 0)
        self.start_cpu_timer(0)
        self.set_cpu(saved)

    def boot_cpu_joins_node(self) -> None:
        """arch_cpu_finalize_init(): on an x86 NUMA build the boot CPU enters its node's mask only now."""
        if not self.boot_cpu_in_node:
            self.boot_cpu_in_node = True
            if self.numa:
                self.node_cpus[self.cpu_to_node[0]].add(0)

    def cpu_up(self, cpu: int) -> None:
        """Bring a secondary CPU online: cpuup_prepare(), then it joins its node and starts reaping."""
        if not 0 <= cpu < self.nr_cpu_ids:
            raise ConfigError(f"cpu_up {cpu}: the machine has CPUs 0..{self.nr_cpu_ids - 1}")
        if cpu in self.online_cpus:
            return
        self.boot_cpu_joins_node()
        node = self.cpu_to_node[cpu]
        self.log("cpuup_prepare", cpu=cpu, node=node, node_cpus=self.nr_cpus_node(node))
        saved = self.set_cpu(0)
        _reap.cpuup_prepare(self, cpu)
        self.set_cpu(saved)
        self.online_cpus.add(cpu)
        if self.numa:
            self.node_cpus[node].add(cpu)
        _reap.init_reap_node(self, cpu)
        self.start_cpu_timer(cpu)

    def cpu_down(self, cpu: int) -> None:
        """Take a CPU offline: it leaves its node mask, then cpuup_canceled() drains what it held."""
        if cpu not in self.online_cpus or len(self.online_cpus) == 1:
            raise ConfigError(f"cpu_down {cpu}: not an online CPU, or the last one")
        self.online_cpus.discard(cpu)
        self.node_cpus[self.cpu_to_node[cpu]].discard(cpu)
        self.reap_timers = [t for t in self.reap_timers if t[2] != cpu]
        heapq.heapify(self.reap_timers)
        saved = self.set_cpu(min(self.online_cpus))
        _reap.cpuup_canceled(self, cpu)
        self.set_cpu(saved)

    def boot_complete(self) -> None:
        """Finish booting: init_late, the boot CPU in its node, every other CPU up."""
        self.init_late()
        self.boot_cpu_joins_node()
        for cpu in range(1, self.nr_cpu_ids):
            self.cpu_up(cpu)

    # ---- context -------------------------------------------------------------------------------
    def set_event_hook(self, hook: Callable[..., None] | None) -> None:
        """Have ``hook(kind, cachep, ptr, size, flags, node, internal)`` called at each allocation and free
        (the tracepoints; a replay pairs the model's own allocations through it)."""
        self.event_hook = hook

    @contextmanager
    def unobserved(self) -> Iterator[None]:
        """Neither explained nor passed to the event hook while inside (a replay's own bookkeeping)."""
        saved_explain, self.explain = self.explain, None
        saved_hook, self.event_hook = self.event_hook, None
        try:
            yield
        finally:
            self.explain = saved_explain
            self.event_hook = saved_hook

    def set_policy(self, cpu: int, pol: MemPolicy | None) -> None:
        """The memory policy of the task running on ``cpu`` (None: the default, local one)."""
        if pol is None:
            self.policies.pop(cpu, None)
        else:
            self.policies[cpu] = pol

    def clear_policies(self) -> None:
        """Every task back to the default (local) policy."""
        self.policies.clear()

    def kmem_cache_create_unmerged(self, name: str, size: int, align: int = 0, flags: int = 0) -> KmemCache | None:
        """kmem_cache_create() as with slab_nomerge: a cache of its own, never an alias."""
        saved = self.slab_nomerge
        self.slab_nomerge = True
        try:
            return self.kmem_cache_create(name, size, align, flags)
        finally:
            self.slab_nomerge = saved

    def set_cpu(self, cpu: int) -> int:
        """Run what follows on ``cpu``; returns the previous CPU."""
        old = self.cpu
        if cpu != old:
            if not 0 <= cpu < self.nr_cpu_ids:
                raise ConfigError(f"CPU {cpu} does not exist (the machine has CPUs 0..{self.nr_cpu_ids - 1})")
            self.cpu = cpu
            self.numa_node = self.cpu_to_node[cpu]
        return old

    def nr_cpus_node(self, node: int) -> int:
        return len(self.node_cpus[node])

    def next_node_in(self, node: int) -> int:
        nodes = self.online_nodes
        for n in nodes:
            if n > node:
                return n
        return nodes[0]

    def set_mempolicy(self, cpu: int, mode: str = "local", nodes: Iterable[int] = ()) -> None:
        """Give the task running on ``cpu`` a memory policy (local, preferred, interleave, bind)."""
        if mode not in ("local", "preferred", "interleave", "bind"):
            raise ConfigError(f"unknown memory policy {mode!r}: use local, preferred, interleave or bind")
        ns = tuple(nodes)
        for n in ns:
            if n not in self.online_nodes:
                raise ConfigError(f"memory policy names node {n}, which does not exist")
        if mode == "local":
            self.policies.pop(cpu, None)
        else:
            self.policies[cpu] = MemPolicy(mode, ns)

    def current_policy(self) -> MemPolicy | None:
        return self.policies.get(self.cpu) if self.policies else None

    def cpuset_slab_spread_node(self) -> int:
        self._spread_rotor = self.next_node_in(self._spread_rotor)
        return self._spread_rotor

    # ---- logging and errors ----------------------------------------------------------------------
    def printk(self, msg: str) -> None:
        """One dmesg line; it also belongs to every misuse report being collected (misuse_report)."""
        self.dmesg.append(msg)
        for rec in self._reports:
            rec.messages.append(msg)

    @contextmanager
    def misuse_report(self, kind: str, cachep: KmemCache | None, ptr: int, *, check: str = "", last_user: int = 0,
                      caller: int = 0) -> Iterator[Misuse]:
        """Collect one detected misuse: a :class:`Misuse` record is appended to ``k.misuse`` at once and
        every dmesg line printed inside the ``with`` block becomes one of its ``messages`` (the
        kernel's report).  The record stays when the block ends in :class:`KernelBug`."""
        rec = Misuse(kind, cachep.name if cachep is not None else "", ptr, self.cpu, self.jiffies, [],
                     last_user, caller, check)
        self.misuse.append(rec)
        self._reports.append(rec)
        try:
            yield rec
        finally:
            self._reports.remove(rec)

    def report_misuse(self, kind: str, cachep: KmemCache | None, ptr: int, messages: Iterable[str] = (), *,
                      check: str = "", last_user: int = 0, caller: int = 0) -> Misuse:
        """Record a misuse whose report (``messages``, possibly none) is already in dmesg."""
        rec = Misuse(kind, cachep.name if cachep is not None else "", ptr, self.cpu, self.jiffies,
                     list(messages), last_user, caller, check)
        self.misuse.append(rec)
        return rec

    def warn(self, msg: str, objp: int = 0, *, kind: str = "warning", check: str = "",
             cachep: KmemCache | None = None, last_user: int = 0) -> None:
        """WARN(cond, msg): the message, taint W, and a misuse record."""
        with self.misuse_report(kind, cachep, objp, check=check, last_user=last_user):
            self.printk(msg)
        self.taint("W")

    def warn_once(self, key: str, msg: str, objp: int = 0, *, kind: str = "", check: str = "",
                  cachep: KmemCache | None = None) -> None:
        """WARN_ONCE(key): printed (and taint W) the first time only; every occurrence is a misuse record
        (of ``kind``, default ``key``)."""
        with self.misuse_report(kind or key, cachep, objp, check=check):
            if key not in self._warned:
                self._warned.add(key)
                self.printk(msg)
                self.taint("W")

    def taint(self, flag: str) -> None:
        self.tainted.add(flag)

    def print_tainted(self) -> str:
        """print_tainted(): ``Not tainted``, or one column per taint flag (``Tainted: G    B``...)."""
        if not self.tainted:
            return "Not tainted"
        return "Tainted: " + "".join(on if on in self.tainted else off for on, off in TAINT_FLAGS)

    def ksym(self, name: str, size: int = 0x100) -> int:
        """A kernel text address for the function ``name`` (to pass as ``caller``): SLAB_STORE_USER
        reports then print it as the kernel's %pS does, ``name+0x0/0x100``."""
        for addr, (n, _) in self.symbols.items():
            if n == name:
                return addr
        addr = KERNEL_TEXT_START + sum(sz for _, sz in self.symbols.values())
        self.symbols[addr] = (name, size)
        return addr

    def symbolize(self, addr: int) -> str:
        """%pS of a caller address: ``name+off/size`` for a ksym() address, else the raw hex value."""
        for start, (name, size) in self.symbols.items():
            if start <= addr < start + size:
                return f"{name}+{addr - start:#x}/{size:#x}"
        return f"{addr:#x}" if addr else "0x0"

    def bug(self, msg: str, function: str, cache: str = "", objp: int = 0, *, line: int = 0,
            file: str = "mm/slab.c") -> NoReturn:
        """BUG()/BUG_ON(): raise :class:`KernelBug` carrying ``msg``.  With ``line`` (the BUG's place in
        the 5.10 source) dmesg gets the kernel's own ``kernel BUG at mm/slab.c:<line>!`` report, ``msg``
        being what the kernel printed before it (or that same line); without, ``msg`` is printed."""
        if line:
            self.printk("------------[ cut here ]------------")
            self.printk(f"kernel BUG at {file}:{line}!")
        else:
            self.printk(msg)
        self.taint("D")
        raise KernelBug(msg, function=function, cache=cache, objp=objp)

    def bug_bad_free(self, cachep: KmemCache, objp: int, function: str) -> NoReturn:
        self.bug(f"kernel BUG at mm/slab.c: {function}: {objp:#x} does not belong to cache {cachep.name}",
                 function, cachep.name, objp)

    def panic(self, msg: str) -> NoReturn:
        self.printk("Kernel panic - not syncing: " + msg)
        raise KernelBug(msg, function="panic")

    def log(self, what: str, **fields: object) -> None:
        """The creation log, in the format of the oracle kernel's ``kslab-oracle:`` lines."""
        parts = [f"kslab-oracle: {what}"]
        for key, v in fields.items():
            parts.append(f"{key}={v:#x}" if key == "flags" and isinstance(v, int) else f"{key}={v}")
        self.creation_log.append(" ".join(parts))

    def log_geometry(self, s: KmemCache) -> None:
        self.log("geometry", name=s.name, object_size=s.object_size, size=s.size, align=s.align, flags=s.flags,
                 num=s.num, gfporder=s.gfporder, colour=s.colour, colour_off=s.colour_off,
                 freelist_size=s.freelist_size,
                 freelist_cache=s.freelist_cache.name if s.freelist_cache is not None else "-",
                 obj_offset=s.obj_offset, limit=s.limit, batchcount=s.batchcount, shared=s.shared)

    def log_tune(self, s: KmemCache) -> None:
        self.log("tune", name=s.name, limit=s.limit, batchcount=s.batchcount, shared=s.shared)

    def log_free_limit(self, s: KmemCache, node: int, caller: str) -> None:
        n = s.node[node]
        if n is not None:
            self.log("free_limit", name=s.name, node=node, free_limit=n.free_limit,
                     node_cpus=self.nr_cpus_node(node), batchcount=s.batchcount, num=s.num, caller=caller)

    # ---- RCU and time ----------------------------------------------------------------------------
    def call_rcu(self, fn: Callable[..., None], *args: Any) -> None:
        self.rcu_callbacks.append(lambda: fn(*args))

    def rcu_barrier_then(self, fn: Callable[[], None]) -> None:
        self.rcu_callbacks.append(fn)

    def synchronize_rcu(self) -> int:
        """End the current grace period: run every queued RCU callback."""
        n = 0
        while self.rcu_callbacks:
            cbs, self.rcu_callbacks = self.rcu_callbacks, []
            for cb in cbs:
                cb()
                n += 1
        return n

    def reap_offset(self, cachep: KmemCache) -> int:
        """The address-derived part of a node's first next_reap: (address of the cache) % REAPTIMEOUT_NODE."""
        if cachep.name in self.reap_offsets:
            return self.reap_offsets[cachep.name]
        kaddr = self.replay_hooks.kernel_cache_addr.get(cachep.addr)
        if kaddr is not None:
            return kaddr % (4 * self.config.HZ)
        return (cachep.addr + self.config.reap_seed) % (4 * self.config.HZ)

    def round_jiffies_relative(self, j: int, cpu: int, force_up: bool = False) -> int:
        """__round_jiffies_relative(j, cpu) of kernel/time/timer.c: the delay ``j`` made to end on a whole
        second of the kernel's jiffies counter, skewed by 3 jiffies per CPU.

        ``k.jiffies`` counts ticks since boot, while the kernel's counter starts at INITIAL_JIFFIES
        (300 s before the 32-bit wrap): its whole seconds fall at ``-INITIAL_JIFFIES % HZ`` past each
        second of uptime (704 ms at HZ=1000).  The real 5.10 traces agree: a reap at 1.745 s is followed
        by one at 3.729 s, which rounding on whole seconds of uptime (to 4.000 s) cannot give."""
        hz = self.config.HZ
        base = INITIAL_JIFFIES(hz)
        now = base + self.jiffies
        original = now + j
        t = original + cpu * 3
        rem = t % hz
        # just after a whole second: round down (unless force_up), else up to the next one
        t = t - rem if rem < hz // 4 and not force_up else t - rem + hz
        t -= cpu * 3
        # time_is_after_jiffies(): a rounded time that is not in the future keeps the exact value
        return (t if t > now else original) - now

    def start_cpu_timer(self, cpu: int) -> None:
        """slab_online_cpu(): the CPU's reap work, first due about a second from now."""
        delay = self.round_jiffies_relative(self.config.HZ, cpu)
        self._arm(cpu, self.jiffies + delay)

    def _arm(self, cpu: int, when: int) -> None:
        self._reap_seq += 1
        heapq.heappush(self.reap_timers, (when, self._reap_seq, cpu))

    def advance(self, jiffies: int, run_timers: bool = True) -> int:
        """Move the clock to ``jiffies``, running every reap that falls due on the way."""
        ran = 0
        if jiffies < self.jiffies:
            raise ConfigError(f"time cannot go backwards (jiffies {self.jiffies} -> {jiffies})")
        # With nothing allocated in between, five per-CPU reaps empty an array and five node reaps empty
        # the free lists; after 16 periods per CPU a reap changes nothing, so a long idle gap is skipped
        # in bounded time: the remaining timers are moved past the gap on their 2 s grid.
        budget = 16 * max(1, len(self.online_cpus))
        while run_timers and self.reap_timers and self.reap_timers[0][0] <= jiffies:
            if ran >= budget:
                period = 2 * self.config.HZ
                timers = []
                for when, seq, cpu in self.reap_timers:
                    if when <= jiffies:
                        when += ((jiffies - when) // period + 1) * period
                    timers.append((when, seq, cpu))
                heapq.heapify(timers)
                self.reap_timers = timers
                break
            when, _, cpu = heapq.heappop(self.reap_timers)
            if when > self.jiffies:
                self.jiffies = when
            self.synchronize_rcu()
            self.run_cache_reap(cpu, rearm=True)
            ran += 1
        if jiffies > self.jiffies:
            self.jiffies = jiffies
            self.synchronize_rcu()
        return ran

    def run_cache_reap(self, cpu: int, rearm: bool = False) -> None:
        """Run cache_reap() on ``cpu`` now (as the per-CPU reap work does every ~2 s)."""
        saved = self.set_cpu(cpu)
        try:
            _reap.cache_reap(self)
        finally:
            self.set_cpu(saved)
        if rearm:
            self._arm(cpu, self.jiffies + self.round_jiffies_relative(2 * self.config.HZ, cpu))

    # ---- lookup helpers ----------------------------------------------------------------------------
    def kmalloc_slab(self, size: int, flags: int) -> KmemCache | None:
        c = _km.kmalloc_slab(self, size, flags)
        return None if isinstance(c, int) else c

    def find_cache(self, name: str) -> KmemCache | None:
        """The newest cache with this name (as /proc/slabinfo writes find it), or an alias's target."""
        # The replay asks for the same few names on every event: remember the caches found by name.  A
        # remembered answer holds while slab_caches keeps its length and its first (newest) entry: every
        # creation inserts at the head and every destruction removes, so any change shows in one of the two.
        caches = self.slab_caches
        if caches:
            if len(caches) == self._find_len and caches[0] is self._find_head:
                c = self._find_memo.get(name)
                if c is not None:
                    return c
            else:
                self._find_memo.clear()
                self._find_len = len(caches)
                self._find_head = caches[0]
        for c in caches:
            if c.name == name:
                self._find_memo[name] = c
                return c
        for c in caches:
            if name in c.aliases:
                return c
        return None

    def virt_to_cache(self, objp: int) -> KmemCache | None:
        page = self.mem_map.virt_to_head_page(objp)
        if page is None or page.slab_cache is None:
            return None
        return page.slab_cache

    def page_of(self, objp: int) -> Page | None:
        return self.mem_map.virt_to_head_page(objp)

    # ---- object bytes (what a driver does with the memory it got) -----------------------------------
    def read(self, ptr: int, n: int) -> bytes:
        """The ``n`` bytes at ``ptr`` (a slab object's freelist indices included, as in the kernel)."""
        return self.memory.read(ptr, n)

    def write(self, ptr: int, data: bytes | bytearray) -> None:
        """Store ``data`` at ``ptr``: nothing checks bounds, so writing past an object (or into a freed
        one) damages what is there, for the debug checks to find later."""
        self.memory.write(ptr, data)

    def memset(self, ptr: int, value: int, n: int) -> None:
        """memset(ptr, value, n), unchecked like write()."""
        self.memory.memset(ptr, value, n)

    # ---- entry points (the kernel's exported API) -------------------------------------------------
    def kmem_cache_create(self, name: str, size: int, align: int = 0, flags: int = 0,
                          ctor: Callable[[int], Any] | bool | None = None, useroffset: int = 0,
                          usersize: int = 0, cpu: int = 0) -> KmemCache | None:
        from .slab_common import kmem_cache_create_usercopy  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            if self.init_late_done and name not in EARLY_INIT_CACHES:
                self.boot_cpu_joins_node()
            return kmem_cache_create_usercopy(self, name, size, align, flags, useroffset, usersize, ctor)
        finally:
            self.set_cpu(saved)

    def kmem_cache_destroy(self, cachep: KmemCache | None, cpu: int = 0) -> None:
        from .slab_common import kmem_cache_destroy  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            kmem_cache_destroy(self, cachep)
        finally:
            self.set_cpu(saved)

    def kmem_cache_shrink(self, cachep: KmemCache, cpu: int = 0) -> int:
        from .slab_common import kmem_cache_shrink  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            return kmem_cache_shrink(self, cachep)
        finally:
            self.set_cpu(saved)

    def shrink_cache(self, name: str, cpu: int = 0) -> int:
        """An administrator's shrink of the cache called ``name``: kmem_cache_shrink() on it (all CPUs'
        arrays, shared and alien arrays drained, every empty slab released).  SLAB has no sysfs shrink
        file and drop_caches does not shrink slab caches, so this stands for a module or test calling
        kmem_cache_shrink.  Returns 1 if objects remain in use, else 0."""
        cachep = self.find_cache(name)
        if cachep is None:
            raise ConfigError(f"shrink: no slab cache named {name!r}")
        return self.kmem_cache_shrink(cachep, cpu=cpu)

    def kmem_cache_alloc(self, cachep: KmemCache, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _alloc.kmem_cache_alloc(cachep, flags, caller)

    def kmem_cache_zalloc(self, cachep: KmemCache, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        from .gfp import __GFP_ZERO  # noqa: PLC0415
        return self.kmem_cache_alloc(cachep, flags | __GFP_ZERO, cpu, caller)

    def kmem_cache_alloc_node(self, cachep: KmemCache, flags: int = GFP_KERNEL, node: int = -1, cpu: int = 0,
                              caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _alloc.kmem_cache_alloc_node(cachep, flags, node, caller)

    def kmem_cache_free(self, cachep: KmemCache, objp: int, cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kmem_cache_free(cachep, objp, caller)

    def kmem_cache_alloc_bulk(self, cachep: KmemCache, nr: int, flags: int = GFP_KERNEL, cpu: int = 0,
                              caller: int = 0) -> list[int]:
        self.set_cpu(cpu)
        out: list[int] = []
        _alloc.kmem_cache_alloc_bulk(cachep, flags, nr, out, caller)
        return out

    def kmem_cache_free_bulk(self, cachep: KmemCache | None, objs: list[int], cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kmem_cache_free_bulk(cachep, len(objs), objs, self, caller)

    def kfree_bulk(self, objs: list[int], cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kfree_bulk(self, len(objs), objs, caller)

    def kmalloc(self, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kmalloc(self, size, flags, caller)

    def kmalloc_node(self, size: int, flags: int = GFP_KERNEL, node: int = -1, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kmalloc_node(self, size, flags, node, caller)

    def kzalloc(self, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kzalloc(self, size, flags, caller)

    def kcalloc(self, n: int, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kcalloc(self, n, size, flags, caller)

    def krealloc(self, p: int, new_size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.krealloc(self, p, new_size, flags, caller)

    def ksize(self, p: int) -> int:
        return _km.ksize(self, p)

    def kfree(self, objp: int, cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kfree(self, objp, caller)

    def cache_reap(self, cpu: int = 0) -> None:
        self.run_cache_reap(cpu)

    # ---- /proc ---------------------------------------------------------------------------------------
    def slabinfo(self) -> str:
        from .slabinfo import slabinfo_show  # noqa: PLC0415
        return slabinfo_show(self)

    def slabinfo_write(self, text: str | bytes, cpu: int = 0) -> int:
        from .slabinfo import slabinfo_write  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            return slabinfo_write(self, text)
        finally:
            self.set_cpu(saved)

    def buddyinfo(self) -> str:
        return self.page_alloc.buddyinfo()

    def snapshot(self) -> dict[str, Any]:
        """The machine's state as plain data (dicts, lists, ints, strs): JSON- and pandas-ready.

        ``caches`` has one record per /proc/slabinfo line, with the cache's geometry, tunables, the
        STATS counters, kslab's per-path counters and per-node list lengths and array fill.
        """
        from .slabinfo import get_slabinfo  # noqa: PLC0415
        caches = []
        for c in self.slab_caches:
            d = get_slabinfo(c)
            rec: dict[str, Any] = {f: getattr(d, f) for f in d.__slots__}
            rec.update(object_size=c.object_size, align=c.align, flags=c.flags, gfporder=c.gfporder,
                       placement=c.placement, colour=c.colour, colour_off=c.colour_off, refcount=c.refcount,
                       aliases=list(c.aliases), stats=c.stats.as_dict(), paths=c.paths.as_dict(),
                       cpu_avail=[len(ac.entry) for ac in c.cpu_cache])
            rec["nodes"] = [
                {"node": n.nid, "partial": len(n.slabs_partial), "full": len(n.slabs_full), "free": len(n.slabs_free),
                 "free_objects": n.free_objects, "free_limit": n.free_limit,
                 "shared_avail": len(n.shared.entry) if n.shared is not None else None,
                 "alien_avail": [len(a.entry) if a is not None else None for a in n.alien] if n.alien else None}
                for n in c.node if n is not None]
            caches.append(rec)
        return {
            "machine": {"cpus": self.nr_cpu_ids, "nodes": self.nr_node_ids, "topology": self.config.topology_text(),
                        "mem": self.config.mem, "CONFIG_DEBUG_SLAB": self.debug, "jiffies": self.jiffies,
                        "online_cpus": sorted(self.online_cpus)},
            "caches": caches,
            "buddy": self.page_alloc.zoneinfo_summary(),
            "dmesg": list(self.dmesg),
        }

    def check(self) -> None:
        """Verify every invariant of the model; raises SlabCorruptionError."""
        from .check import check  # noqa: PLC0415
        check(self)

    def __repr__(self) -> str:
        return (f"<Kernel cpus={self.nr_cpu_ids} nodes={self.nr_node_ids} caches={len(self.slab_caches)}"
                f" jiffies={self.jiffies} state={'FULL' if self.slab_state == FULL else self.slab_state}>")


# start_kernel() runs numa_policy_init() and acpi_early_init() between kmem_cache_init_late() and
# arch_cpu_finalize_init(): the caches they create are the only ones made before the boot CPU
# enters its node's mask (x86 NUMA builds), so they keep free_limit = batchcount + num on 1 CPU.
EARLY_INIT_CACHES = frozenset({"numa_policy", "shared_policy_node", "Acpi-Namespace", "Acpi-State", "Acpi-Parse",
                               "Acpi-ParseExt", "Acpi-Operand"})
