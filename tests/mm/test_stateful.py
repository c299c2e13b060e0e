"""Random operation sequences on random machines, with the model's invariants checked after every step.

The machine keeps its own book of live objects (never freeing twice) and checks, besides
``k.check()``: per private cache, objects counted active in slabs == live objects + objects held
in per-CPU/shared/alien arrays; no live object sits in an array or on its slab's free stack;
every live pointer still belongs to its cache; the page allocator's own consistency check.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from kslab.mm.config import MachineConfig
from kslab.mm.gfp import __GFP_ZERO as GFP_ZERO  # a class body would mangle __GFP_ZERO
from kslab.mm.gfp import GFP_KERNEL
from kslab.mm.kernel import Kernel
from kslab.mm.slab_def import SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU

MACHINES = [
    dict(cpus=1),
    dict(cpus=2),
    dict(cpus=4, nodes=2),
    dict(cpus=1, CONFIG_DEBUG_SLAB=True),
    dict(cpus=2, CONFIG_DEBUG_SLAB=True),
    dict(cpus=4, nodes=2, CONFIG_DEBUG_SLAB=True),
    dict(cpus=4, nodes=2, noaliencache=True),
    dict(cpus=2, init_on_free=True),
    dict(cpus=4, nodes=2, init_on_free=True, CONFIG_SLAB_FREELIST_HARDENED=True),
    dict(cpus=2, slab_nomerge=True, CONFIG_SLAB_FREELIST_HARDENED=True),
    dict(cpus=2, CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=1),
    dict(cpus=4, nodes=2, CONFIG_SLAB_FREELIST_RANDOM=True, CONFIG_DEBUG_SLAB=True, random_seed=2),
]

KMALLOC_SIZES = [0, 1, 8, 24, 33, 64, 70, 100, 128, 129, 200, 256, 700, 1500, 3000, 5000, 9000, 70000]
CACHE_SIZES = [8, 24, 64, 100, 200, 256, 1000, 1960, 3000, 5000, 8192]
CACHE_FLAGS = [0, SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN]


def _ctor(_obj: int) -> None:
    pass


class SlabMachine(RuleBasedStateMachine):
    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self.k: Kernel | None = None
        self.live: dict[int, object] = {}  # pointer -> owning KmemCache
        self.ncreated = 0
        self.handle_of: dict[int, object] = {}  # handle id -> cache

    # ---- setup --------------------------------------------------------------------------------------
    @initialize(machine=st.sampled_from(MACHINES), mem=st.sampled_from(["256M", "2G"]))
    def boot(self, machine, mem):
        self.k = Kernel(MachineConfig.build(mem=mem, **machine))
        self.ncpu = self.k.nr_cpu_ids
        self.nnodes = self.k.nr_node_ids

    def _cpu(self, cpu: int) -> int:
        return cpu % self.ncpu

    def _track(self, ptr: int, cachep) -> None:
        if ptr and ptr > 16:
            assert ptr not in self.live, f"{ptr:#x} handed out twice"
            self.live[ptr] = cachep

    def _private(self):
        return [c for c in self.k.slab_caches if c.refcount >= 0 and not c.boot and c is not self.k.kmem_cache]

    # ---- kmalloc family -------------------------------------------------------------------------------
    @rule(size=st.sampled_from(KMALLOC_SIZES), cpu=st.integers(0, 3), zero=st.booleans())
    def kmalloc(self, size, cpu, zero):
        k = self.k
        p = k.kmalloc(size, GFP_KERNEL | (GFP_ZERO if zero else 0), cpu=self._cpu(cpu))
        if size == 0:
            assert p == 16
            return
        assert p, f"kmalloc({size}) failed"
        c = k.virt_to_cache(p)
        assert c is not None and c.object_size >= size
        if zero:
            assert k.memory.read(p, min(size, 64)) == bytes(min(size, 64))
        self._track(p, c)

    @rule(size=st.sampled_from(KMALLOC_SIZES), node=st.integers(-1, 1), cpu=st.integers(0, 3))
    def kmalloc_node(self, size, node, cpu):
        node = node if node < self.nnodes else -1
        p = self.k.kmalloc_node(size, GFP_KERNEL, node=node, cpu=self._cpu(cpu))
        if size == 0:
            assert p == 16
            return
        assert p
        if node >= 0:
            assert self.k.page_of(p).nid == node
        self._track(p, self.k.virt_to_cache(p))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), cpu=st.integers(0, 3))
    def kfree(self, data, cpu):
        ptr = data.draw(st.sampled_from(sorted(self.live)))
        del self.live[ptr]
        self.k.kfree(ptr, cpu=self._cpu(cpu))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), new=st.sampled_from([1, 50, 100, 300, 5000]), cpu=st.integers(0, 3))
    def krealloc(self, data, new, cpu):
        ptr = data.draw(st.sampled_from(sorted(self.live)))
        c = self.live[ptr]
        if c.ctor or c.flags & SLAB_TYPESAFE_BY_RCU:
            return  # krealloc is for kmalloc-like memory only
        del self.live[ptr]
        ks = self.k.ksize(ptr)
        q = self.k.krealloc(ptr, new, cpu=self._cpu(cpu))
        assert q
        if ks >= new:
            assert q == ptr
        self._track(q, self.k.virt_to_cache(q))

    # ---- caches ---------------------------------------------------------------------------------------
    @precondition(lambda self: self.ncreated < 12)
    @rule(target=handles, size=st.sampled_from(CACHE_SIZES), flags=st.sampled_from(CACHE_FLAGS),
          ctor=st.booleans(), align=st.sampled_from([0, 0, 8, 64]))
    def create(self, size, flags, ctor, align):
        self.ncreated += 1
        name = f"c{self.ncreated}"
        c = self.k.kmem_cache_create(name, size, align, flags, _ctor if ctor else None)
        assert c is not None
        assert c.object_size >= size
        hid = self.ncreated
        self.handle_of[hid] = c
        return hid

    @rule(h=handles, cpu=st.integers(0, 3), n=st.integers(1, 20))
    def cache_alloc(self, h, cpu, n):
        c = self.handle_of.get(h)
        if c is None:
            return
        for _ in range(n):
            p = self.k.kmem_cache_alloc(c, cpu=self._cpu(cpu))
            assert p
            assert self.k.virt_to_cache(p) is c
            self._track(p, c)

    @rule(h=handles, node=st.integers(-1, 1), cpu=st.integers(0, 3))
    def cache_alloc_node(self, h, node, cpu):
        c = self.handle_of.get(h)
        if c is None:
            return
        node = node if node < self.nnodes else -1
        p = self.k.kmem_cache_alloc_node(c, GFP_KERNEL, node=node, cpu=self._cpu(cpu))
        assert p
        if node >= 0:
            assert self.k.page_of(p).nid == node
        self._track(p, c)

    @rule(h=handles, cpu=st.integers(0, 3), n=st.integers(1, 40))
    def cache_alloc_bulk(self, h, cpu, n):
        c = self.handle_of.get(h)
        if c is None:
            return
        objs = self.k.kmem_cache_alloc_bulk(c, n, cpu=self._cpu(cpu))
        assert len(objs) == n
        for p in objs:
            self._track(p, c)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), cpu=st.integers(0, 3), many=st.booleans())
    def cache_free(self, data, cpu, many):
        ptrs = sorted(self.live)
        chosen = data.draw(st.lists(st.sampled_from(ptrs), min_size=1, max_size=30 if many else 1, unique=True))
        cpu = self._cpu(cpu)
        for p in chosen:
            c = self.live.pop(p)
            self.k.kmem_cache_free(c, p, cpu=cpu)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), cpu=st.integers(0, 3))
    def free_bulk(self, data, cpu):
        ptrs = data.draw(st.lists(st.sampled_from(sorted(self.live)), min_size=1, max_size=20, unique=True))
        for p in ptrs:
            del self.live[p]
        self.k.kfree_bulk(ptrs, cpu=self._cpu(cpu))

    @rule(h=handles, cpu=st.integers(0, 3))
    def shrink(self, h, cpu):
        c = self.handle_of.get(h)
        if c is None:
            return
        busy = any(o is c for o in self.live.values())
        ret = self.k.kmem_cache_shrink(c, cpu=self._cpu(cpu))
        assert ret == (1 if busy else 0)
        for n in c.node:
            if n is not None:
                assert n.free_slabs == 0 and not n.slabs_free
                assert n.shared is None or n.shared.avail == 0
        assert all(a.avail == 0 for a in c.cpu_cache)

    @rule(h=consumes(handles))
    def destroy(self, h):
        c = self.handle_of.get(h)
        if c is None or any(o is c for o in self.live.values()):
            return
        del self.handle_of[h]
        self.k.kmem_cache_destroy(c)
        if not any(x is c for x in self.handle_of.values()):
            assert c not in self.k.slab_caches
            self.k.synchronize_rcu()

    @rule(h=handles, limit=st.integers(-1, 200), batch=st.integers(0, 130), shared=st.integers(-1, 9),
          cpu=st.integers(0, 3))
    def slabinfo_write(self, h, limit, batch, shared, cpu):
        c = self.handle_of.get(h)
        if c is None:
            return
        before = (c.limit, c.batchcount, c.shared)
        text = f"{c.name} {limit} {batch} {shared}"
        ret = self.k.slabinfo_write(text, cpu=self._cpu(cpu))
        assert ret == len(text)
        if limit < 1 or batch < 1 or batch > limit or shared < 0:
            assert (c.limit, c.batchcount, c.shared) == before
        else:
            assert (c.limit, c.batchcount, c.shared) == (limit, batch, shared)
            assert all(a.avail == 0 and a.limit == limit for a in c.cpu_cache)

    @rule(h=handles, cpu=st.integers(0, 3))
    def tune_defaults(self, h, cpu):
        """Re-tune to the enable_cpucache() defaults for the cache's size."""
        c = self.handle_of.get(h)
        if c is None:
            return
        size = c.size
        limit = 1 if size > 131072 else 8 if size > 4096 else 24 if size > 1024 else 54 if size > 256 else 120
        if self.k.debug:
            limit = min(limit, 32)
        shared = 8 if size <= 4096 and self.ncpu > 1 else 0
        text = f"{c.name} {limit} {(limit + 1) // 2} {shared}"
        assert self.k.slabinfo_write(text, cpu=self._cpu(cpu)) == len(text)

    @rule(cpu=st.integers(0, 3), dt=st.sampled_from([0, 500, 2000, 4000]), due=st.booleans())
    def reap(self, cpu, dt, due):
        k = self.k
        k.jiffies += dt
        if due:
            for c in self._private():
                for n in c.node:
                    if n is not None:
                        n.next_reap = k.jiffies
        k.run_cache_reap(self._cpu(cpu))

    @rule(dt=st.sampled_from([1000, 3000]))
    def advance(self, dt):
        self.k.advance(self.k.jiffies + dt)

    # ---- invariants -----------------------------------------------------------------------------------
    @invariant()
    def model_invariants(self):
        if self.k is None:
            return
        self.k.check()

    @invariant()
    def conservation(self):
        k = self.k
        if k is None:
            return
        live_by_cache: dict[int, int] = {}
        for p, c in self.live.items():
            live_by_cache[id(c)] = live_by_cache.get(id(c), 0) + 1
            assert k.virt_to_cache(p) is c, f"{p:#x} no longer belongs to {c.name}"
            page = k.page_of(p)
            idx = (p - c.obj_offset - page.s_mem) // c.size
            assert (p - c.obj_offset - page.s_mem) % c.size == 0
            assert idx not in page.fl[page.active:c.num], f"live object {p:#x} is free in its slab"
        for c in self._private():
            arrays = list(c.cpu_cache)
            for n in c.node:
                if n is None:
                    continue
                if n.shared is not None:
                    arrays.append(n.shared)
                arrays.extend(a for a in (n.alien or ()) if a is not None)
            in_arrays = [o + c.obj_offset for a in arrays for o in a.entry]
            assert not set(in_arrays) & {p for p, o in self.live.items() if o is c}
            active = 0
            for n in c.node:
                if n is None:
                    continue
                for head in (n.slabs_full, n.slabs_partial, n.slabs_free):
                    active += sum(page.active for page in head)
            assert active == live_by_cache.get(id(c), 0) + len(in_arrays), c.name


SlabMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=60, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.filter_too_much])
TestSlabMachine = SlabMachine.TestCase
