"""The operations of the soak test's workload (:mod:`kslab.tools.soak`): the random choices (CPU, size,
gfp flags, node, cache), the books of the objects the workload holds, and one method per operation
of ``OPS``, as a well-behaved caller of the kernel's entry points would make them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ..mm.gfp import __GFP_NOWARN as GFP_NOWARN  # a class body would mangle the __ names
from ..mm.gfp import __GFP_THISNODE as GFP_THISNODE
from ..mm.gfp import __GFP_ZERO as GFP_ZERO
from ..mm.gfp import GFP_ATOMIC, GFP_KERNEL, GFP_KERNEL_ACCOUNT, GFP_NOWAIT
from ..mm.kernel import Kernel
from ..mm.slab_def import SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU, KmemCache

if TYPE_CHECKING:
    from collections.abc import Callable

    from .soak import SoakStats

ZERO_SIZE_PTR = 16
KMALLOC_SIZES = (1, 8, 16, 24, 32, 48, 64, 96, 100, 128, 192, 200, 256, 500, 512, 700, 1024, 1500, 2048, 3000,
                 4096, 5000, 8192, 9000, 16384, 32768, 65536, 70000, 131072, 262144, 1 << 20, 4 << 20)
CACHE_SIZES = (8, 16, 24, 40, 64, 100, 128, 192, 200, 256, 424, 1000, 1960, 3000, 4096, 5000, 8192, 20000)
CACHE_FLAGS = (0, SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN,
               SLAB_HWCACHE_ALIGN | SLAB_RECLAIM_ACCOUNT)
GFPS = (GFP_KERNEL, GFP_KERNEL, GFP_KERNEL, GFP_KERNEL | GFP_ZERO, GFP_KERNEL_ACCOUNT, GFP_ATOMIC, GFP_NOWAIT,
        GFP_ATOMIC | GFP_NOWARN)

# operation -> weight
OPS: dict[str, int] = {
    "kmalloc": 30, "kmalloc_node": 8, "kzalloc": 3, "kcalloc": 2, "krealloc": 3, "cache_alloc": 22,
    "cache_alloc_node": 6, "alloc_bulk": 2, "free": 55, "free_bulk": 2, "kfree_bulk": 1, "kfree_null": 1,
    "create": 1, "destroy": 1, "shrink": 1, "tune": 1, "time": 2, "rcu": 1, "hotplug": 1, "pressure": 1,
}

# operation -> the Workload method that runs it
_OP_METHODS: dict[str, str] = {
    "kmalloc": "_op_kmalloc",
    "kzalloc": "_op_kzalloc",
    "kcalloc": "_op_kcalloc",
    "kmalloc_node": "_op_kmalloc_node",
    "krealloc": "_op_krealloc",
    "cache_alloc": "_op_cache_alloc",
    "cache_alloc_node": "_op_cache_alloc",
    "alloc_bulk": "_op_alloc_bulk",
    "free": "_op_free",
    "free_bulk": "_op_free_bulk",
    "kfree_bulk": "_op_free_bulk",
    "kfree_null": "_op_kfree_null",
    "create": "_op_create",
    "destroy": "_op_destroy",
    "shrink": "_op_shrink",
    "tune": "_op_tune",
    "time": "_op_time",
    "rcu": "_op_rcu",
    "hotplug": "_op_hotplug",
    "pressure": "_op_pressure",
}


def _ctor(_obj: int) -> None:
    pass


class SoakFailure(Exception):
    """An invariant broke or the model raised: the message says where (seed, segment, machine, op)."""


class Operations:
    """The workload's operations; :class:`kslab.tools.soak.Workload` sets the attributes below and
    provides ``_hook`` (the kernel's event hook, which keeps the books of the model's own objects)."""

    k: Kernel
    rng: random.Random
    stats: SoakStats
    live: dict[int, KmemCache]  # object held by the workload -> its cache
    live_list: list[int]  # the same objects, for O(1) random choice
    where: dict[int, int]  # object -> index in live_list
    caches: list[KmemCache]  # caches the workload created (and may destroy)
    ncreated: int
    heavy: bool
    base: dict[int, int]
    hooked_ptr: dict[int, KmemCache]
    _hook: Callable[..., None]

    def _hold(self, ptr: int, cachep: KmemCache | None, what: str) -> None:
        if ptr == ZERO_SIZE_PTR:
            return
        if not ptr:
            self.stats.failed[what] += 1
            return
        if ptr in self.live:
            raise SoakFailure(f"{what} returned {ptr:#x}, which the workload already holds")
        c = self.k.virt_to_cache(ptr)
        if c is None or (cachep is not None and c is not cachep):
            raise SoakFailure(f"{what} returned {ptr:#x} of cache {c.name if c else None}, expected "
                              f"{cachep.name if cachep else 'a slab object'}")
        self.live[ptr] = c
        self.where[ptr] = len(self.live_list)
        self.live_list.append(ptr)

    def _release(self, ptr: int) -> KmemCache:
        c = self.live.pop(ptr)
        i = self.where.pop(ptr)
        last = self.live_list.pop()
        if last != ptr:
            self.live_list[i] = last
            self.where[last] = i
        return c

    def _pick(self) -> int:
        return self.live_list[self.rng.randrange(len(self.live_list))]

    # ---- choices --------------------------------------------------------------------------------------
    def _cpu(self) -> int:
        online = self.k.topo.online_cpus
        cpu = self.rng.randrange(self.k.nr_cpu_ids)
        return cpu if cpu in online else min(online)

    def _size(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randint(1, 300)
        if r < 0.9:
            return self.rng.choice(KMALLOC_SIZES[:12]) + self.rng.randint(-3, 3)
        if r < 0.995:
            return self.rng.choice(KMALLOC_SIZES[:24])  # up to 64K
        if r < 0.999 and not self.heavy:
            return self.rng.choice(KMALLOC_SIZES)  # up to 4M, the largest kmalloc cache
        return self.rng.choice((0, (4 << 20) + 1, 1 << 30))  # ZERO_SIZE_PTR, and too large for kmalloc: NULL

    def _gfp(self) -> int:
        return self.rng.choice(GFPS)

    def _node(self) -> int:
        return self.rng.randrange(-1, self.k.nr_node_ids)

    def _cache(self) -> KmemCache | None:
        return self.rng.choice(self.caches) if self.caches else None

    # ---- operations -----------------------------------------------------------------------------------
    def step(self, op: str) -> None:
        """Run one operation of the workload (a key of ``OPS``)."""
        name = _OP_METHODS.get(op)
        if name is None:
            raise ValueError(f"unknown operation {op!r}")
        getattr(self, name)(op)

    def _op_kmalloc(self, op: str) -> None:
        """``kmalloc``."""
        k = self.k
        self._hold(k.kmalloc(max(self._size(), 0), self._gfp(), cpu=self._cpu()), None, op)

    def _op_kzalloc(self, op: str) -> None:
        """``kzalloc``."""
        k = self.k
        size = max(self._size(), 0)
        p = k.kzalloc(size, self._gfp(), cpu=self._cpu())
        if p > ZERO_SIZE_PTR and k.memory.read(p, min(size, 32)) != bytes(min(size, 32)):
            raise SoakFailure(f"kzalloc({size}) returned {p:#x}, not zeroed")
        self._hold(p, None, op)

    def _op_kcalloc(self, op: str) -> None:
        """``kcalloc``."""
        k, rng = self.k, self.rng
        n = rng.choice((1, 2, 10, 100, 1 << 62))
        self._hold(k.kcalloc(n, rng.choice((8, 24, 100)), self._gfp(), cpu=self._cpu()), None, op)

    def _op_kmalloc_node(self, op: str) -> None:
        """``kmalloc_node``."""
        k, rng = self.k, self.rng
        node = self._node()
        gfp = self._gfp() | (GFP_THISNODE if node >= 0 and rng.random() < 0.3 else 0)
        p = k.kmalloc_node(max(self._size(), 0), gfp, node=node, cpu=self._cpu())
        if p > ZERO_SIZE_PTR and gfp & GFP_THISNODE:
            page = k.page_of(p)
            assert page is not None  # memory handed out has its struct page
            if page.nid != node:
                raise SoakFailure(f"kmalloc_node(GFP_THISNODE, node {node}) returned an object of node "
                                  f"{page.nid}")
        self._hold(p, None, op)

    def _op_krealloc(self, op: str) -> None:
        """``krealloc``."""
        k, rng = self.k, self.rng
        if not self.live_list:
            return
        ptr = self._pick()
        c = self.live[ptr]
        if c.ctor is not None or c.flags & SLAB_TYPESAFE_BY_RCU or not c.name.startswith(("kmalloc-", "dma-")):
            return  # krealloc is for kmalloc'd memory
        self._release(ptr)
        q = k.krealloc(ptr, rng.choice((1, 50, 100, 300, 5000, 70000)), self._gfp(), cpu=self._cpu())
        if not q:  # the old object stays allocated
            self.stats.failed[op] += 1
            self._hold(ptr, c, op)
        else:
            self._hold(q, None, op)

    def _op_cache_alloc(self, op: str) -> None:
        """``cache_alloc``, ``cache_alloc_node``."""
        k = self.k
        c = self._cache()
        if c is None:
            return self.step("create")
        if op == "cache_alloc":
            p = k.kmem_cache_alloc(c, self._gfp(), cpu=self._cpu())
        else:
            p = k.kmem_cache_alloc_node(c, self._gfp(), node=self._node(), cpu=self._cpu())
        self._hold(p, c, op)

    def _op_alloc_bulk(self, op: str) -> None:
        """``alloc_bulk``."""
        k, rng = self.k, self.rng
        c = self._cache()
        if c is None:
            return
        # when it fails midway, the bulk allocation frees what it took through kmem_cache_free (and its
        # tracepoint), but it took them without one: the books ignore those frees
        def bulk_hook(kind: str, cachep: KmemCache | None, ptr: int, *rest: Any) -> None:
            if kind != "kmem_cache_free" or rest[-1] or ptr in self.hooked_ptr:
                self._hook(kind, cachep, ptr, *rest)

        k.event_hook = bulk_hook
        try:
            objs = k.kmem_cache_alloc_bulk(c, rng.randint(1, 40), self._gfp(), cpu=self._cpu())
        finally:
            k.event_hook = self._hook
        if not objs:
            self.stats.failed[op] += 1
        for p in objs:
            self._hold(p, c, op)
            self._hook("kmem_cache_alloc", c, p, 0, 0, -1, "")  # the bulk calls pass no tracepoint

    def _op_free(self, _op: str) -> None:
        """``free``."""
        k, rng = self.k, self.rng
        if not self.live_list:
            return
        ptr = self._pick()
        c = self._release(ptr)
        if (rng.random() < 0.5 and c.name.startswith(("kmalloc-", "dma-kmalloc-"))) or rng.random() < 0.2:
            k.kfree(ptr, cpu=self._cpu())
        else:
            k.kmem_cache_free(c, ptr, cpu=self._cpu())

    def _op_free_bulk(self, op: str) -> None:
        """``free_bulk``, ``kfree_bulk``."""
        k, rng = self.k, self.rng
        if not self.live_list:
            return
        ptrs = list({self._pick() for _ in range(rng.randint(1, 30))})
        caches = {id(self.live[p]): self.live[p] for p in ptrs}
        for p in ptrs:
            self._hook("kfree", None, p, 0, 0, -1, "")  # the bulk calls pass no tracepoint
        if op == "free_bulk" and len(caches) == 1:
            for p in ptrs:
                self._release(p)
            k.kmem_cache_free_bulk(next(iter(caches.values())), ptrs, cpu=self._cpu())
        else:
            for p in ptrs:
                self._release(p)
            k.kfree_bulk(ptrs, cpu=self._cpu())

    def _op_kfree_null(self, _op: str) -> None:
        """``kfree_null``."""
        k, rng = self.k, self.rng
        k.kfree(rng.choice((0, ZERO_SIZE_PTR)), cpu=self._cpu())

    def _op_create(self, op: str) -> None:
        """``create``."""
        k, rng = self.k, self.rng
        if len(self.caches) >= 12:
            return
        self.ncreated += 1
        c = k.kmem_cache_create(f"soak-{self.ncreated}", rng.choice(CACHE_SIZES), rng.choice((0, 0, 8, 64)),
                                rng.choice(CACHE_FLAGS), _ctor if rng.random() < 0.2 else None,
                                cpu=self._cpu())
        if c is None:
            self.stats.failed[op] += 1
            return
        self.caches.append(c)
        self.base.setdefault(id(c), 0)

    def _op_destroy(self, _op: str) -> None:
        """``destroy``."""
        k, rng = self.k, self.rng
        c = self._cache()
        if c is None or any(v is c for v in self.live.values()):
            return
        self.caches.remove(c)
        if c not in self.caches:  # (a cache merged twice stays listed once per creation)
            k.kmem_cache_destroy(c, cpu=self._cpu())
            if c.flags & SLAB_TYPESAFE_BY_RCU and rng.random() < 0.5:
                k.synchronize_rcu()

    def _op_shrink(self, _op: str) -> None:
        """``shrink``."""
        k, rng = self.k, self.rng
        c = self._cache() if rng.random() < 0.7 else rng.choice(k.slab_caches)
        if c is not None:
            k.kmem_cache_shrink(c, cpu=self._cpu())

    def _op_tune(self, _op: str) -> None:
        """``tune``."""
        k, rng = self.k, self.rng
        c = self._cache() if rng.random() < 0.7 else rng.choice(k.slab_caches)
        if c is not None:
            limit = rng.choice((-1, 0, 1, 8, 24, 54, 120, 500))
            text = f"{c.name} {limit} {rng.choice((0, 1, limit // 2 or 1, limit + 1))} {rng.choice((0, 1, 8, -1))}"
            k.slabinfo_write(text, cpu=self._cpu())

    def _op_time(self, _op: str) -> None:
        """``time``."""
        k, rng = self.k, self.rng
        k.advance(k.jiffies + rng.choice((1, 100, 1000, 2000, 4000)))

    def _op_rcu(self, _op: str) -> None:
        """``rcu``."""
        k = self.k
        k.synchronize_rcu()

    def _op_hotplug(self, _op: str) -> None:
        """``hotplug``."""
        k, rng = self.k, self.rng
        offline = [c for c in range(k.nr_cpu_ids) if c not in k.topo.online_cpus]
        if offline and rng.random() < 0.6:
            k.cpu_up(rng.choice(offline))
        elif len(k.topo.online_cpus) > 1:
            k.cpu_down(rng.choice(sorted(k.topo.online_cpus - {0})))

    def _op_pressure(self, op: str) -> None:
        """``pressure``."""
        k, rng = self.k, self.rng
        # large objects until the page allocator says no (on the small machines), then give some back
        size = rng.choice((65536, 262144, 1 << 20, 4 << 20))
        if self.heavy and rng.random() < 0.9:
            return
        for _ in range(rng.randint(1, 64)):
            p = k.kmalloc(size, GFP_KERNEL | GFP_NOWARN, cpu=self._cpu())
            self._hold(p, None, op)
            if not p:
                break
