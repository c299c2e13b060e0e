"""Helpers for tests/debug (imported as a plain module: pytest puts tests/debug on sys.path).

They only observe the model (parse /proc/slabinfo, look at arrays); every expected number in the
tests is worked out by hand from the spec (§6, §7) and the kernel's rules.
"""

from __future__ import annotations

from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slab_def import KmemCache, KmemCacheNode

HZ = 1000


def boot(cpus: int = 1, nodes: int = 1, **options: object) -> Kernel:
    """A fully booted machine."""
    return Kernel(MachineConfig.build(cpus=cpus, nodes=nodes, **options))


def slabinfo_row(k: Kernel, name: str) -> list[str]:
    """The words of the newest /proc/slabinfo line of ``name``."""
    for row in k.slabinfo().splitlines()[2:]:
        words = row.split()
        if words[0] == name:
            return words
    raise KeyError(name)


def listed(k: Kernel, name: str) -> bool:
    return any(row.split()[0] == name for row in k.slabinfo().splitlines()[2:])


def cols(k: Kernel, name: str) -> tuple[int, int, int, int, int]:
    """active_objs, num_objs, active_slabs, num_slabs, sharedavail (the spec's §12.3 columns)."""
    w = slabinfo_row(k, name)
    assert w[12] == "slabdata", w
    return int(w[1]), int(w[2]), int(w[13]), int(w[14]), int(w[15])


def tunables(k: Kernel, name: str) -> tuple[int, int, int]:
    w = slabinfo_row(k, name)
    assert w[7] == "tunables", w
    return int(w[8]), int(w[9]), int(w[10])


def ac(cachep: KmemCache, cpu: int) -> list[int]:
    return cachep.cpu_cache[cpu].entry


def node(cachep: KmemCache, nid: int = 0) -> KmemCacheNode:
    n = cachep.node[nid]
    assert n is not None
    return n


def far_future(k: Kernel, cachep: KmemCache) -> None:
    """Keep the node part of cache_reap away from ``cachep`` (only the per-CPU arrays are reaped)."""
    for n in cachep.node:
        if n is not None:
            n.next_reap = k.jiffies + 10**9
