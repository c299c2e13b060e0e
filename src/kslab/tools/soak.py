"""Soak test: long random workloads on the model, with its invariants checked as they run.

    python -m kslab.tools.soak --ops 10000000 --seed 1          the long run (see docs/robustness.md)
    python -m kslab.tools.soak --ops 20000 --seed 3 --segment 2000

The operations are split into segments; each segment boots a new machine drawn at random (1..8 CPUs on
1..4 nodes, CONFIG_DEBUG_SLAB on or off, init_on_alloc/init_on_free, hardened freelists, no alien caches,
slab_nomerge, and memory from 64M to 2G: the small machines run out of memory) and runs a random mix of
the kernel's entry points on it as a well-behaved caller would (every object freed once, to its own
cache): kmalloc/kzalloc/kcalloc/krealloc/kmalloc_node, kmem_cache_alloc(_node), bulk allocation and
free, kfree/kmem_cache_free, cache creation (merging, ctors, SLAB_TYPESAFE_BY_RCU, hwcache alignment)
and destruction, shrinking, tuning through /proc/slabinfo writes, time passing (reaping), RCU grace
periods, CPU hotplug, and bursts of large allocations until memory runs out.

Every ``--check-every`` operations (and at the end of each segment) it verifies:

* ``Kernel.check()``: every invariant of the slab lists, arrays and the page allocator (free + pcp +
  allocated pages = managed pages of every zone);
* memory conservation: the page allocator's allocated pages = pages of the slabs on the caches' lists +
  slab pages waiting for an RCU grace period (SLAB has no other user of pages here);
* object conservation, per cache: objects counted active in its slabs = objects the workload holds +
  the model's own objects (array caches, node structures, off-slab freelists, ``struct kmem_cache``;
  counted through the kernel's event hook) + objects sitting in per-CPU, shared and alien arrays;
* each of a sample of the objects held belongs to its cache and is not free in its slab.

Out of memory must be the kernel's answer: NULL (0) from the allocation, never a Python exception; the
number of failed allocations is reported.  Any exception or broken invariant stops the run with the seed,
the segment's machine and the operation number, and exit status 1.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..mm.config import MachineConfig, parse_size, size_text
from ..mm.errors import SlabCorruptionError
from ..mm.kernel import Kernel
from ..mm.page import Page
from ..mm.slab_def import KmemCache
from .soak_ops import CACHE_FLAGS, CACHE_SIZES, GFPS, KMALLOC_SIZES, OPS, ZERO_SIZE_PTR, Operations, SoakFailure

__all__ = [
    "CACHE_FLAGS", "CACHE_SIZES", "GFPS", "KMALLOC_SIZES", "MEMS", "OPS", "ZERO_SIZE_PTR", "SoakFailure", "SoakStats",
    "Workload", "main", "random_config", "run",
]

MEMS = ("64M", "64M", "128M", "256M", "512M", "2G")


@dataclass
class SoakStats:
    ops: int = 0
    segments: int = 0
    checks: int = 0
    by_op: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # allocations answered with NULL, by operation
    machines: Counter[str] = field(default_factory=Counter)
    peak_live: int = 0
    peak_pages: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        rate = int(self.ops / self.seconds) if self.seconds else 0
        out = [f"soak: {self.ops:,} operations in {self.segments} segments (machines), {self.checks:,} full checks, "
               f"{self.seconds:.1f} s ({rate:,} ops/s)",
               f"  allocations that failed (NULL, as the kernel answers when out of memory): "
               f"{sum(self.failed.values()):,}  {dict(sorted(self.failed.items()))}",
               f"  peak objects held: {self.peak_live:,}; peak pages allocated: {self.peak_pages:,}",
               "  operations: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_op.items()))]
        kinds: Counter[str] = Counter()
        for desc, n in self.machines.items():
            for word in desc.split():
                kinds[word] += n
        out.append("  machines: " + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))
        return out


def random_config(rng: random.Random) -> tuple[MachineConfig, str]:
    cpus = rng.randint(1, 8)
    nodes = rng.randint(1, min(4, cpus))
    mem = rng.choice(MEMS)
    opts: dict[str, Any] = {
        "CONFIG_DEBUG_SLAB": rng.random() < 0.4, "init_on_alloc": rng.random() < 0.2,
        "init_on_free": rng.random() < 0.3, "CONFIG_SLAB_FREELIST_HARDENED": rng.random() < 0.3,
        "noaliencache": rng.random() < 0.2, "slab_nomerge": rng.random() < 0.2,
    }
    if mem == "64M" and nodes > 2:
        nodes = 2  # 32M per node at least: a node of 16M has hardly any memory above its watermarks
    unit = nodes * (2 << 20)  # whole 2M blocks per node
    mem = size_text(-(-parse_size(mem) // unit) * unit)
    config = MachineConfig.build(cpus=cpus, nodes=nodes, mem=mem, **opts)
    desc = " ".join([f"cpus={cpus}", f"nodes={nodes}", f"mem={mem}"] + [k for k, v in opts.items() if v])
    return config, desc


class Workload(Operations):
    """One machine and a well-behaved caller of its entry points, keeping the books the checks need."""

    def __init__(self, config: MachineConfig, rng: random.Random, stats: SoakStats) -> None:
        self.k = k = Kernel(config)
        self.rng = rng
        self.stats = stats
        self.live: dict[int, KmemCache] = {}  # object held by the workload -> its cache
        self.live_list: list[int] = []  # the same objects, for O(1) random choice
        self.where: dict[int, int] = {}  # object -> index in live_list
        self.caches: list[KmemCache] = []  # caches the workload created (and may destroy)
        self.ncreated = 0
        # debug and init_on_* machines write every byte of an object (poison, zeroing): fewer large ones
        self.heavy = config.CONFIG_DEBUG_SLAB or config.init_on_free or config.init_on_alloc
        # objects counted through the event hook (every kmalloc/kmem_cache_alloc/kfree/kmem_cache_free,
        # the model's own included), per cache, on top of what each cache held when the hook was set
        self.base: dict[int, int] = {}
        self.hooked: Counter[int] = Counter()
        self.hooked_ptr: dict[int, KmemCache] = {}
        for c in k.slab_caches:
            self.base[id(c)] = self._active(c) - self._in_arrays(c)
        k.event_hook = self._hook

    # ---- books ----------------------------------------------------------------------------------------
    def _hook(self, kind: str, cachep: KmemCache | None, ptr: int, size: int, flags: int, node: int,
              internal: str) -> None:
        if ptr <= ZERO_SIZE_PTR:
            return
        if kind.startswith(("kmalloc", "kmem_cache_alloc")):
            c = cachep if cachep is not None else self.k.virt_to_cache(ptr)
            if c is not None:
                self.hooked[id(c)] += 1
                self.hooked_ptr[ptr] = c
        else:  # kfree: called before the free; kmem_cache_free: after, with the object's real cache
            c = self.hooked_ptr.pop(ptr, None)
            if c is None:
                c = cachep if cachep is not None else self.k.virt_to_cache(ptr)
            if c is not None:
                self.hooked[id(c)] -= 1

    # ---- checks ---------------------------------------------------------------------------------------
    @staticmethod
    def _arrays(c: KmemCache) -> list[Any]:
        arrays = list(c.cpu_cache)
        for n in c.node:
            if n is not None:
                if n.shared is not None:
                    arrays.append(n.shared)
                arrays.extend(a for a in (n.alien or ()) if a is not None)
        return arrays

    def _in_arrays(self, c: KmemCache) -> int:
        return sum(len(a.entry) for a in self._arrays(c))

    @staticmethod
    def _active(c: KmemCache) -> int:
        return sum(page.active for n in c.node if n is not None
                   for head in (n.slabs_full, n.slabs_partial, n.slabs_free) for page in head)

    def check(self, sample: int = 200) -> None:
        k = self.k
        page: Page | None
        k.check()
        # memory: allocated pages are slab pages (listed, or waiting for an RCU grace period)
        listed = sum(n.total_slabs << c.gfporder for c in k.slab_caches for n in c.node if n is not None)
        rcu = 0
        for page in k.mem_map.pages.values():
            if page.rcu_pending:
                c = page.slab_cache
                rcu += 1 << (c.gfporder if c is not None else 0)
        allocated = k.page_alloc.nr_allocated_pages
        if allocated != listed + rcu:
            raise SlabCorruptionError(f"memory not conserved: {allocated} pages allocated, {listed} in slabs on "
                                      f"lists + {rcu} waiting for RCU")
        # objects, per cache
        for c in k.slab_caches:
            active = self._active(c)
            expect = self.base.get(id(c), 0) + self.hooked[id(c)] + self._in_arrays(c)
            if active != expect:
                held = sum(1 for v in self.live.values() if v is c)
                raise SlabCorruptionError(f"{c.name}: objects not conserved: {active} active in slabs, expected "
                                          f"{expect} (held by the workload {held}, counted by the hook "
                                          f"{self.base.get(id(c), 0) + self.hooked[id(c)]}, in arrays "
                                          f"{self._in_arrays(c)})")
        # a sample of the objects held: in a slab of their cache, allocated there
        for ptr in self.rng.sample(self.live_list, min(sample, len(self.live_list))):
            c = self.live[ptr]
            page = k.page_of(ptr)
            if page is None or page.slab_cache is not c or page.fl is None:
                raise SlabCorruptionError(f"held object {ptr:#x} is not in a slab of {c.name}")
            off = ptr - (c.obj_offset if k.debug else 0) - page.s_mem
            if off % c.size or not 0 <= off // c.size < c.num:
                raise SlabCorruptionError(f"held object {ptr:#x} is not at an object boundary of {c.name}")
            if off // c.size in page.fl[page.active:c.num]:
                raise SlabCorruptionError(f"held object {ptr:#x} of {c.name} is free in its slab")
        self.stats.checks += 1
        self.stats.peak_live = max(self.stats.peak_live, len(self.live))
        self.stats.peak_pages = max(self.stats.peak_pages, allocated)

    def finish(self) -> None:
        """Free everything the workload holds, destroy its caches, and check that what remains is the boot's."""
        k = self.k
        for ptr in list(self.live_list):
            c = self._release(ptr)
            k.kmem_cache_free(c, ptr, cpu=min(k.topo.online_cpus))
        for c in list(self.caches):
            self.caches.remove(c)
            if c not in self.caches:
                k.kmem_cache_destroy(c)
        k.synchronize_rcu()
        self.check()


def run(ops: int, seed: int, segment: int = 200_000, check_every: int = 5_000, out: Any = None,
        progress: bool = False) -> SoakStats:
    """Run ``ops`` operations (in segments of ``segment``, one random machine each) from ``seed``."""
    rng = random.Random(seed)
    stats = SoakStats()
    names = list(OPS)
    weights = list(OPS.values())
    t0 = time.perf_counter()
    done = 0
    while done < ops:
        n = min(segment, ops - done)
        config, desc = random_config(rng)
        stats.segments += 1
        stats.machines[desc] += 1
        where = f"seed {seed}, segment {stats.segments} ({desc})"
        try:
            w = Workload(config, random.Random(rng.getrandbits(64)), stats)
            chosen = rng.choices(names, weights, k=n)
            for i, op in enumerate(chosen, 1):
                w.step(op)
                stats.by_op[op] += 1
                if not i % check_every:
                    w.check()
            w.check()
            w.finish()
        except SoakFailure as e:
            raise SoakFailure(f"{where}, operation {stats.ops + i} ({op}): {e}") from e
        except Exception as e:
            raise SoakFailure(f"{where}, operation {stats.ops + i} ({op}): {type(e).__name__}: {e}") from e
        done += n
        stats.ops = done
        stats.seconds = time.perf_counter() - t0
        if progress and out is not None:
            out.write(f"  segment {stats.segments}: {done:,}/{ops:,} ops, {stats.checks:,} checks, "
                      f"{stats.seconds:.0f} s ({desc})\n")
            out.flush()
    stats.seconds = time.perf_counter() - t0
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kslab.tools.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=1_000_000, help="operations in all (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1): the same seed, the same run")
    ap.add_argument("--segment", type=int, default=200_000, help="operations per machine (default 200,000)")
    ap.add_argument("--check-every", type=int, default=5_000, help="operations between full checks (default 5,000)")
    ap.add_argument("--progress", action="store_true", help="a line per segment")
    a = ap.parse_args(argv)
    for name in ("ops", "segment", "check_every"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    print(f"soak: seed {a.seed}, {a.ops:,} operations, {a.segment:,} per machine, full check every "
          f"{a.check_every:,}", flush=True)
    try:
        stats = run(a.ops, a.seed, a.segment, a.check_every, sys.stdout, a.progress)
    except SoakFailure as e:
        print(f"soak: FAILED: {e}", flush=True)
        return 1
    for line in stats.lines():
        print(line)
    print("soak: OK: no invariant broken, memory and objects conserved, out of memory answered with NULL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
