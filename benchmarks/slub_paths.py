#!/usr/bin/env python3
"""Speed of kslab's SLUB model (fast and slow paths) on a synthetic workload, and the share of each path.

A deterministic random mix (seeded) of kmalloc/kfree of 8..4096 bytes on every CPU of the machine, frees
often on another CPU than the allocation's, with a flush of every cache every 20,000 operations:

    python3 benchmarks/slub_paths.py [--ops N] [--cpus C] [--nodes N] [--seed S]

Prints operations per second and, summed over the caches, the SLUB_STATS counters that moved.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kslab.mm.config import MachineConfig
from kslab.mm.page import MemMap
from kslab.mm.page_alloc import PageAllocator
from kslab.mm.slub.allocator import SlubAllocator
from kslab.mm.slub.init import kmem_cache_init
from kslab.mm.slub.slab import StatItem
from kslab.mm.slub.slub_def import SlubConfig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200_000)
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sl = kmem_cache_init(SlubConfig(nr_cpu_ids=args.cpus, num_present_cpus=args.cpus, nr_node_ids=args.nodes))
    pa = PageAllocator(MachineConfig.build(cpus=args.cpus, nodes=args.nodes, mem="1G"), MemMap())
    a = SlubAllocator(sl, pa)
    rng = random.Random(args.seed)
    live: list[int] = []
    t0 = time.perf_counter()
    for i in range(args.ops):
        cpu = rng.randrange(args.cpus)
        if live and (len(live) > 20_000 or rng.random() < 0.48):
            a.kfree(live.pop(rng.randrange(len(live))), cpu)
        else:
            live.append(a.kmalloc(rng.choice((8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096)), cpu))
        if i % 20_000 == 19_999:
            for s in sl.slab_caches:
                a.flush_all(s)
    dt = time.perf_counter() - t0
    print(f"{args.ops} operations in {dt:.2f} s: {args.ops / dt:,.0f} ops/s ({len(live)} objects live)")
    for item in StatItem:
        total = sum(c.stat[item] for s in sl.slab_caches for c in s.cpu_slab)
        if total:
            print(f"  {item.name:<24} {total:>9}")
    allocs = sum(c.stat[StatItem.ALLOC_FASTPATH] + c.stat[StatItem.ALLOC_SLOWPATH]
                 for s in sl.slab_caches for c in s.cpu_slab)
    fast = sum(c.stat[StatItem.ALLOC_FASTPATH] for s in sl.slab_caches for c in s.cpu_slab)
    print(f"  fast-path share of allocations: {100 * fast / max(allocs, 1):.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
