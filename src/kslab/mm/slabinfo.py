"""/proc/slabinfo: reading (``slabinfo_show``/``cache_show``/``get_slabinfo``) and writing
(``slabinfo_write``), mirroring mm/slab_common.c and mm/slab.c.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .gfp import GFP_KERNEL
from .slab.tune import do_tune_cpucache

if TYPE_CHECKING:
    from .kernel import Kernel
    from .slab_def import KmemCache

KERNEL_SYMBOLS = ("get_slabinfo", "print_slabinfo_header", "cache_show", "slabinfo_show_stats", "slabinfo_show",
                  "slabinfo_write")

MAX_SLABINFO_WRITE = 128
EINVAL = 22


@dataclass(frozen=True, slots=True)
class SlabinfoData:
    """struct slabinfo plus the name: one line of /proc/slabinfo as numbers."""

    name: str
    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    limit: int
    batchcount: int
    sharedfactor: int
    active_slabs: int
    num_slabs: int
    sharedavail: int


def get_slabinfo(cachep: KmemCache) -> SlabinfoData:
    total_slabs = free_slabs = free_objs = shared_avail = 0
    for n in cachep.node:
        if n is None:
            continue
        total_slabs += n.total_slabs
        free_slabs += n.free_slabs
        free_objs += n.free_objects
        if n.shared is not None:
            shared_avail += len(n.shared.entry)
    num_objs = total_slabs * cachep.num
    return SlabinfoData(cachep.name, num_objs - free_objs, num_objs, cachep.size, cachep.num, 1 << cachep.gfporder,
                        cachep.limit, cachep.batchcount, cachep.shared, total_slabs - free_slabs, total_slabs,
                        shared_avail)


def print_slabinfo_header(k: Kernel) -> str:
    head = "slabinfo - version: 2.1 (statistics)\n" if k.debug else "slabinfo - version: 2.1\n"
    line = ("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
            " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>")
    if k.debug:
        line += (" : globalstat <listallocs> <maxobjs> <grown> <reaped> <error> <maxfreeable> <nodeallocs>"
                 " <remotefrees> <alienoverflow> : cpustat <allochit> <allocmiss> <freehit> <freemiss>")
    return head + line + "\n"


def slabinfo_show_stats(cachep: KmemCache) -> str:
    s = cachep.stats
    return (f" : globalstat {s.num_allocations:7d} {s.high_mark:6d} {s.grown:5d} {s.reaped:4d} {s.errors:4d}"
            f" {s.max_freeable:4d} {s.node_allocs:4d} {s.node_frees:4d} {s.node_overflow:4d}"
            f" : cpustat {s.allochit:6d} {s.allocmiss:6d} {s.freehit:6d} {s.freemiss:6d}")


def _lu(v: int) -> int:
    """%lu of a value the kernel holds unsigned."""
    return v & 0xFFFFFFFFFFFFFFFF


def cache_show(cachep: KmemCache, debug: bool) -> str:
    d = get_slabinfo(cachep)
    line = (f"{d.name:<17s} {_lu(d.active_objs):6d} {_lu(d.num_objs):6d} {d.objsize:6d} {d.objperslab:4d}"
            f" {d.pagesperslab:4d} : tunables {d.limit:4d} {d.batchcount:4d} {d.sharedfactor:4d}"
            f" : slabdata {_lu(d.active_slabs):6d} {_lu(d.num_slabs):6d} {_lu(d.sharedavail):6d}")
    if debug:
        line += slabinfo_show_stats(cachep)
    return line + "\n"


def slabinfo_show(k: Kernel) -> str:
    out = [print_slabinfo_header(k)]
    for c in k.slab_caches:
        out.append(cache_show(c, k.debug))
    return "".join(out)


def slabinfo_write(k: Kernel, text: str | bytes) -> int:
    """Write one ``name limit batchcount shared`` line: returns the byte count or -errno."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    count = len(raw)
    if count > MAX_SLABINFO_WRITE:
        return -EINVAL
    s = raw.decode("latin-1")
    name, sep, rest = s.partition(" ")
    if not sep:
        return -EINVAL
    nums: list[int] = []
    pos, end = 0, len(rest)
    while len(nums) < 3:
        # the kernel's sscanf(" %d %d %d"): skip blanks, one optional '-' (no '+'), decimal digits;
        # stop at the first field that does not start a number.  The value lands in an int.
        while pos < end and rest[pos] in " \t\n\v\f\r":
            pos += 1
        start = pos
        if pos < end and rest[pos] == "-":
            pos += 1
        first = pos
        while pos < end and "0" <= rest[pos] <= "9":
            pos += 1
        if pos == first:
            break
        v = int(rest[start:pos]) & 0xFFFFFFFF
        nums.append(v - (1 << 32) if v & 0x80000000 else v)
    if len(nums) != 3:
        return -EINVAL
    limit, batchcount, shared = nums
    for cachep in k.slab_caches:
        if cachep.name == name:
            k.log("slabinfo_write", name=name, limit=limit, batchcount=batchcount, shared=shared)
            if limit < 1 or batchcount < 1 or batchcount > limit or shared < 0:
                return count
            res = do_tune_cpucache(cachep, limit, batchcount, shared, GFP_KERNEL)
            return res if res < 0 else count
    return -EINVAL
