"""Random allocations and frees (single and bulk) on several CPUs and nodes through SLUB's fast and slow
paths, with flushes and shrinks: no object is handed out twice, every slab's objects are accounted for, the
node counters equal the sums over the slabs, and the SLUB_STATS counters agree with the operations and with
each other."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from slowhelp import allocator, cache, check_invariants
from slowhelp import st as stat

from kslab.mm.slub.bulk import kmem_cache_alloc_bulk, kmem_cache_free_bulk
from kslab.mm.slub.node import get_slabinfo
from kslab.mm.slub.slab import NUMA_NO_NODE, StatItem

S = StatItem
CPUS, NODES = 4, 2
NAMES = ("kmalloc-4k", "kmalloc-256")


class SlubMachine(RuleBasedStateMachine):
    """SLUB on 4 CPUs over 2 nodes, two caches (8 objects per slab and cpu_partial_slabs 2; 16 and 7)."""

    @initialize()
    def boot(self) -> None:
        self.a = allocator(CPUS, NODES)
        self.caches = [cache(self.a, name) for name in NAMES]
        self.live: list[set[int]] = [set() for _ in NAMES]
        self.order: list[list[int]] = [[] for _ in NAMES]
        self.allocs = [0] * len(NAMES)
        self.frees = [0] * len(NAMES)
        self.shrunk = [0] * len(NAMES)
        self.bulk_freed = [False] * len(NAMES)

    @rule(which=st.integers(0, len(NAMES) - 1), cpu=st.integers(0, CPUS - 1),
          node=st.sampled_from([NUMA_NO_NODE, NUMA_NO_NODE, 0, 1]), n=st.integers(1, 20))
    def alloc(self, which: int, cpu: int, node: int, n: int) -> None:
        s = self.caches[which]
        for _ in range(n):
            obj = self.a.kmem_cache_alloc(s, cpu, node)
            assert obj and obj not in self.live[which]
            slab = self.a.virt_to_slab(obj)
            assert slab is not None and slab.slab_cache is s
            if node != NUMA_NO_NODE:
                assert slab.nid == node  # the node has memory: its own partial or new slabs
            self.live[which].add(obj)
            self.order[which].append(obj)
            self.allocs[which] += 1

    @rule(which=st.integers(0, len(NAMES) - 1), cpu=st.integers(0, CPUS - 1), pick=st.integers(0, 10 ** 6),
          n=st.integers(1, 20))
    def free(self, which: int, cpu: int, pick: int, n: int) -> None:
        s = self.caches[which]
        for _ in range(n):
            if not self.order[which]:
                return
            obj = self.order[which].pop(pick % len(self.order[which]))
            self.live[which].remove(obj)
            self.a.kmem_cache_free(s, obj, cpu)
            self.frees[which] += 1

    @rule(which=st.integers(0, len(NAMES) - 1), cpu=st.integers(0, CPUS - 1), n=st.integers(1, 40))
    def alloc_bulk(self, which: int, cpu: int, n: int) -> None:
        p = kmem_cache_alloc_bulk(self.a, self.caches[which], 0, n, cpu)
        assert len(p) == n and len(set(p)) == n and not set(p) & self.live[which]
        self.live[which] |= set(p)
        self.order[which] += p
        self.allocs[which] += n

    @rule(which=st.integers(0, len(NAMES) - 1), cpu=st.integers(0, CPUS - 1), data=st.data())
    def free_bulk(self, which: int, cpu: int, data: st.DataObject) -> None:
        if not self.order[which]:
            return
        p = data.draw(st.lists(st.sampled_from(self.order[which]), max_size=40, unique=True))
        kmem_cache_free_bulk(self.a, self.caches[which], p, cpu)
        self.live[which] -= set(p)
        self.order[which] = [o for o in self.order[which] if o in self.live[which]]
        self.frees[which] += len(p)
        self.bulk_freed[which] = self.bulk_freed[which] or len(p) > 1

    @rule(which=st.integers(0, len(NAMES) - 1), cpu=st.integers(0, CPUS - 1))
    def flush(self, which: int, cpu: int) -> None:
        self.a.flush_cpu_slab(self.caches[which], cpu)
        c = self.caches[which].cpu_slab[cpu]
        assert c.slab is None and c.freelist == 0 and c.partial is None

    @rule(which=st.integers(0, len(NAMES) - 1))
    def shrink(self, which: int) -> None:
        s = self.caches[which]
        before = sum(n.nr_slabs for n in s.node)
        discarded_before = stat(s, S.FREE_SLAB)
        self.a.kmem_cache_shrink(s)
        self.shrunk[which] += before - sum(n.nr_slabs for n in s.node) - (stat(s, S.FREE_SLAB) - discarded_before)
        assert all(x.inuse < x.objects for n in s.node for x in n.partial)
        assert all(c.slab is None and c.partial is None for c in s.cpu_slab)

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "a"):
            return
        pages = 0
        for i, s in enumerate(self.caches):
            check_invariants(self.a, s, self.live[i])
            assert stat(s, S.ALLOC_FASTPATH) + stat(s, S.ALLOC_SLOWPATH) == self.allocs[i]
            frees = stat(s, S.FREE_FASTPATH) + stat(s, S.FREE_SLOWPATH)
            # FREE_SLOWPATH counts a call to __slab_free, which a bulk free makes once per detached freelist
            assert frees <= self.frees[i] if self.bulk_freed[i] else frees == self.frees[i]
            # each slow allocation ends in exactly one of these (memory never runs out here)
            assert stat(s, S.ALLOC_SLOWPATH) == (stat(s, S.ALLOC_REFILL) + stat(s, S.CPU_PARTIAL_ALLOC)
                                                 + stat(s, S.ALLOC_FROM_PARTIAL) + stat(s, S.ALLOC_SLAB))
            assert stat(s, S.FREE_SLOWPATH) >= (stat(s, S.FREE_FROZEN) + stat(s, S.CPU_PARTIAL_FREE)
                                                + stat(s, S.FREE_REMOVE_PARTIAL))
            nr_slabs = sum(n.nr_slabs for n in s.node)
            assert nr_slabs == stat(s, S.ALLOC_SLAB) - stat(s, S.FREE_SLAB) - self.shrunk[i]
            info = get_slabinfo(s)
            assert info.num_objs == sum(n.total_objects for n in s.node)
            assert len(self.live[i]) <= info.active_objs <= info.num_objs and info.num_slabs == nr_slabs
            pages += sum(1 << x.order for x in self.a.mm.slabs.values() if x.slab_cache is s)
        assert self.a.mm.pa.nr_allocated_pages == pages


SlubMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
TestSlubMachine = SlubMachine.TestCase
