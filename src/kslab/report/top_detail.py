"""What SLAB holds for one cache right now, as text lines for ``kslab top``'s cache view, and the
kernel's /proc/slabinfo line beside the model's.

The model's state is read, never changed: ``struct kmem_cache``'s tunables and geometry, each CPU's
``array_cache`` (``cpu_cache``), and per node (``struct kmem_cache_node``) the three slab lists, the
shared array, the alien arrays, ``free_objects``/``free_limit`` and ``next_reap``; the next
``cache_reap`` run of each CPU comes from the machine's reap timers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..mm.slab_def import SLAB_LIMIT_BAADF00D
from ..mm.slabinfo import SlabinfoData, get_slabinfo

if TYPE_CHECKING:
    from ..mm.kernel import Kernel
    from ..mm.slab_def import ArrayCache, KmemCache

#: the /proc/slabinfo columns a replay is judged on (as ``kslab replay`` compares them)
CELLS = ("active_objs", "num_objs", "active_slabs", "num_slabs")
#: the columns the cache view puts side by side
SIDE_BY_SIDE = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab", "limit", "batchcount",
                "sharedfactor", "active_slabs", "num_slabs", "sharedavail")


@dataclass(frozen=True)
class KernelSlabinfo:
    """The kernel's own /proc/slabinfo at a point of the trace: where it comes from and its rows."""

    label: str  # e.g. "slabinfo.1-files" or "start slabinfo (sync)"
    lineno: int  # the trace line of the marker it belongs to
    rows: dict[str, dict[str, int]]
    read_line: int = 0  # the trace line of its reader's read (0: not known yet)

    def differs(self, d: SlabinfoData) -> bool:
        """Whether the model's line of a cache differs from the kernel's in a judged cell (a cache the
        kernel does not have differs; one the model lacks is not in the table at all)."""
        kv = self.rows.get(d.name)
        return kv is None or any(getattr(d, c) != kv.get(c) for c in CELLS)

    def score(self, rows: list[SlabinfoData]) -> tuple[int, int]:
        """(equal, total) judged cells over the kernel's caches, as ``kslab replay`` counts them."""
        model = {d.name: d for d in rows}
        equal = total = 0
        for name, kv in self.rows.items():
            d = model.get(name)
            for c in CELLS:
                total += 1
                equal += d is not None and getattr(d, c) == kv.get(c)
        return equal, total


def _array_line(what: str, ac: ArrayCache | None) -> str:
    if ac is None:
        return f"    {what:<10s}  (none)"
    batch = "0xbaadf00d" if ac.batchcount == SLAB_LIMIT_BAADF00D else str(ac.batchcount)
    return f"    {what:<10s} {ac.avail:6d} {ac.limit:6d} {batch:>10s} {ac.touched:8d}"


ARRAY_HEAD = "    array       avail  limit batchcount  touched"


def _cpu_reaps(k: Kernel) -> dict[int, int]:
    """CPU -> jiffies of its next cache_reap run (its delayed work's timer), if one is armed."""
    out: dict[int, int] = {}
    for when, _, cpu in k.reap_work.timers:
        if cpu not in out or when < out[cpu]:
            out[cpu] = when
    return out


def _jiffies_from_now(k: Kernel, when: int) -> str:
    delta = when - k.jiffies
    return f"in {delta} jiffies" if delta >= 0 else f"due {-delta} jiffies ago"


def cache_detail(k: Kernel, c: KmemCache, kernel: KernelSlabinfo | None = None, timers_run: bool = True) -> list[str]:
    """The cache view: geometry and tunables, slabinfo (beside the kernel's when known), the per-CPU
    arrays, and per node the lists, the shared and alien arrays, free_objects, free_limit, next_reap.
    ``timers_run`` is False when a replay runs cache_reap where the trace shows it rather than on the
    model's timers (``--reap trace``): the timers are then shown as such, not as the next runs."""
    d = get_slabinfo(c)
    out = [f"{c.name}: object_size {c.object_size}, size {c.size}, {c.num} per slab, order {c.gfporder} "
           f"({1 << c.gfporder} pages), limit {c.limit}, batchcount {c.batchcount}, shared {c.shared}",
           ""]
    out.extend(_slabinfo_lines(d, kernel))
    out.append("")
    out.append("  per-CPU arrays (cpu_cache):")
    out.append(ARRAY_HEAD)
    online = k.topo.online_cpus
    for cpu, ac in enumerate(c.cpu_cache):
        state = "" if cpu in online else "  (offline)"
        out.append(_array_line(f"CPU {cpu}", ac) + state)
    reaps = _cpu_reaps(k)
    for nid, n in enumerate(c.node):
        if n is None:
            continue
        cpus = sorted(k.topo.node_cpus[nid]) if nid < len(k.topo.node_cpus) else []
        out.append("")
        out.append(f"  node {nid} (CPUs {','.join(map(str, cpus)) or '-'}): slabs partial {len(n.slabs_partial)}, "
                   f"full {len(n.slabs_full)}, free {len(n.slabs_free)} (total_slabs {n.total_slabs}, "
                   f"free_slabs {n.free_slabs})")
        out.append(f"    free_objects {n.free_objects}, free_limit {n.free_limit}; next_reap at jiffies "
                   f"{n.next_reap} ({_jiffies_from_now(k, n.next_reap)})")
        out.append(ARRAY_HEAD)
        out.append(_array_line("shared", n.shared))
        if n.alien is not None:
            for other, alien in enumerate(n.alien):
                if other != nid:
                    out.append(_array_line(f"alien[{other}]", alien))
    out.append("")
    runs = ", ".join(f"CPU {cpu} {_jiffies_from_now(k, when)}" for cpu, when in sorted(reaps.items()))
    if timers_run:
        out.append(f"  next cache_reap (jiffies now {k.jiffies}): {runs or 'no timer armed'}")
    else:
        out.append(f"  cache_reap runs where the trace shows them (--reap trace); the model's own timers "
                   f"(jiffies now {k.jiffies}): {runs or 'none armed'}")
    return out


def _slabinfo_lines(d: SlabinfoData, kernel: KernelSlabinfo | None) -> list[str]:
    kv = kernel.rows.get(d.name) if kernel is not None else None
    if kernel is None:
        head = "  /proc/slabinfo        model   (no kernel slabinfo at this point of the trace)"
    elif kv is None:
        head = f"  /proc/slabinfo        model   kernel: {kernel.label} (line {kernel.lineno}) has no such cache"
    else:
        head = f"  /proc/slabinfo        model   kernel  {kernel.label} (line {kernel.lineno})"
    out = [head]
    for col in SIDE_BY_SIDE:
        mine = getattr(d, col)
        if kv is None or col not in kv:
            out.append(f"    {col:<16s} {mine:8d}")
        else:
            mark = "" if kv[col] == mine else f"   differs by {mine - kv[col]:+d}"
            out.append(f"    {col:<16s} {mine:8d} {kv[col]:8d}{mark}")
    return out
