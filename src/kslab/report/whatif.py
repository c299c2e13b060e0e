"""What the other allocator would have done with the same trace: Linux 5.10's SLAB and Linux 6.12's SLUB side by
side after replaying one trace (``kslab stats TRACE --allocator slub``).

The figures, per allocator, at the end of the replay:
  - slabs, and the memory in them (pages of every slab, in KiB);
  - active objects (/proc/slabinfo's active_objs, summed: SLUB counts the free objects of cpu slabs and per-CPU
    partial slabs as active);
  - allocations + frees: SLUB's are the trace's; SLAB's also hold the SLAB model's own allocations of the
    replay (array caches and kmem_cache structures when the replay boots the machine and creates caches);
  - fast-path share: allocations and frees served without touching a slab list — SLAB's per-CPU array hits
    (kslab's alloc_hit and free_hit path counters), SLUB's lockless fast paths (SLUB_STATS alloc_fastpath and
    free_fastpath) — out of all allocations and frees;
  - frees on another CPU than the object's allocation (a property of the trace), and how each allocator took
    them: SLAB frees into the freeing CPU's array (an alien array across nodes); SLUB frees to the slab itself
    (__slab_free) unless it is the freeing CPU's cpu slab.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..mm.kernel import Kernel
from ..mm.slabinfo import get_slabinfo
from ..mm.slub.node import get_slabinfo as slub_slabinfo
from ..mm.slub.slab import StatItem
from ..trace.replay_slub.engine import SlubReplay


@dataclass(frozen=True, slots=True)
class AllocatorFigures:
    """One allocator's figures after a replay."""

    allocator: str
    caches: int
    slabs: int
    memory_kib: int
    active_objs: int
    fast: int
    allocs_and_frees: int
    cross_cpu_frees: int

    @property
    def fast_share(self) -> float:
        return 100.0 * self.fast / self.allocs_and_frees if self.allocs_and_frees else 0.0


def slab_paths(k: Kernel) -> dict[int, tuple[int, int]]:
    """Per cache (by identity), its array hits and its allocations + frees so far: the baseline a replay's
    figures are counted from (booting the SLAB machine allocates too; booting SLUB's model does not)."""
    return {id(c): (c.paths.alloc_hit + c.paths.free_hit, c.paths.alloc + c.paths.free) for c in k.slab_caches}


def slab_figures(k: Kernel, cross_cpu_frees: int, before: dict[int, tuple[int, int]] | None = None) -> AllocatorFigures:
    """SLAB's figures: slabs and pages of every cache's lists, array hits out of all allocations and frees
    (since ``before``, see :func:`slab_paths`)."""
    slabs = pages = active = fast = total = 0
    base = before or {}
    for c in k.slab_caches:
        si = get_slabinfo(c)
        slabs += si.num_slabs
        pages += si.num_slabs << c.gfporder
        active += si.active_objs
        hit0, all0 = base.get(id(c), (0, 0))
        fast += c.paths.alloc_hit + c.paths.free_hit - hit0
        total += c.paths.alloc + c.paths.free - all0
    return AllocatorFigures("slab", len(k.slab_caches), slabs, pages * 4, active, fast, total, cross_cpu_frees)


def slub_figures(rep: SlubReplay) -> AllocatorFigures:
    """SLUB's figures: every live slab (its own order, after any fallback), the fast paths out of all paths."""
    pages = sum(1 << slab.order for slab in rep.k.a.mm.slabs.values())
    active = fast = total = 0
    for s in rep.k.slab_caches:
        active += slub_slabinfo(s).active_objs
        for c in s.cpu_slab:
            fast += c.stat[StatItem.ALLOC_FASTPATH] + c.stat[StatItem.FREE_FASTPATH]
            total += sum(c.stat[i] for i in (StatItem.ALLOC_FASTPATH, StatItem.ALLOC_SLOWPATH,
                                             StatItem.FREE_FASTPATH, StatItem.FREE_SLOWPATH))
    return AllocatorFigures("slub", len(rep.k.slab_caches), len(rep.k.a.mm.slabs), pages * 4, active, fast, total,
                            rep.cross.other_cpu)


ROWS = (("caches", "caches (/proc/slabinfo lines)"), ("slabs", "slabs"), ("memory_kib", "memory in slabs (KiB)"),
        ("active_objs", "active objects (slabinfo)"), ("fast", "fast-path allocations + frees"),
        ("allocs_and_frees", "allocations + frees"), ("cross_cpu_frees", "frees on another CPU (trace)"))


def render_whatif(a: AllocatorFigures, b: AllocatorFigures) -> str:
    """The two allocators side by side, with b's difference to a."""
    out = [f"{'':34s} {a.allocator:>12s} {b.allocator:>12s} {'difference':>12s}"]
    for key, label in ROWS:
        x, y = getattr(a, key), getattr(b, key)
        out.append(f"{label:34s} {x:12d} {y:12d} {y - x:+12d}")
    out.append(f"{'fast-path share':34s} {a.fast_share:11.1f}% {b.fast_share:11.1f}% "
               f"{b.fast_share - a.fast_share:+11.1f}%")
    return "\n".join(out) + "\n"


def whatif_dict(a: AllocatorFigures, b: AllocatorFigures) -> dict[str, Any]:
    return {f.allocator: {**asdict(f), "fast_share": round(f.fast_share, 3)} for f in (a, b)}


def whatif_table(a: AllocatorFigures, b: AllocatorFigures) -> dict[str, Any]:
    """The side-by-side table as the report page's data: columns, and one row per figure (label, a, b, b - a)."""
    rows: list[list[Any]] = [[label, getattr(a, key), getattr(b, key), getattr(b, key) - getattr(a, key)]
                             for key, label in ROWS]
    rows.append(["fast-path share (%)", round(a.fast_share, 2), round(b.fast_share, 2),
                 round(b.fast_share - a.fast_share, 2)])
    return {"columns": ["figure", a.allocator, b.allocator, "difference"], "rows": rows}
