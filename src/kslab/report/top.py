"""A slabtop-style table of the model (procps slabtop's columns and sort keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.slabinfo import SlabinfoData, get_slabinfo

if TYPE_CHECKING:
    from ..mm.kernel import Kernel

# slabtop's sort keys: a active objs, b objs per slab, c cache size, l slabs, v active slabs,
# n name, o objects, p pages per slab, s object size, u utilisation
SORT_KEYS = {
    "a": lambda d: d.active_objs, "b": lambda d: d.objperslab, "c": lambda d: d.num_slabs * d.pagesperslab,
    "l": lambda d: d.num_slabs, "v": lambda d: d.active_slabs, "n": lambda d: d.name, "o": lambda d: d.num_objs,
    "p": lambda d: d.pagesperslab, "s": lambda d: d.objsize,
    "u": lambda d: (d.active_objs / d.num_objs) if d.num_objs else 0.0,
}


def _kib(d: SlabinfoData) -> int:
    return d.num_slabs * d.pagesperslab * 4


def render_top(k: Kernel, limit: int = 0, sort: str = "o") -> str:
    """The slabtop summary and table, sorted by a slabtop key (descending, name ascending)."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}: use one of {' '.join(sorted(SORT_KEYS))}")
    rows = [get_slabinfo(c) for c in k.slab_caches]
    active_objs = sum(d.active_objs for d in rows)
    objs = sum(d.num_objs for d in rows)
    active_slabs = sum(d.active_slabs for d in rows)
    slabs = sum(d.num_slabs for d in rows)
    used = sum(d.active_objs * d.objsize for d in rows)
    total = sum(_kib(d) for d in rows)
    out = [
        f" Active / Total Objects (% used)    : {active_objs} / {objs} ({100.0 * active_objs / objs if objs else 0:.1f}%)",
        f" Active / Total Slabs (% used)      : {active_slabs} / {slabs} "
        f"({100.0 * active_slabs / slabs if slabs else 0:.1f}%)",
        f" Active / Total Caches (% used)     : {sum(1 for d in rows if d.active_objs)} / {len(rows)} "
        f"({100.0 * sum(1 for d in rows if d.active_objs) / len(rows) if rows else 0:.1f}%)",
        f" Active / Total Size (% used)       : {used / 1024:.2f}K / {total:.2f}K "
        f"({100.0 * used / 1024 / total if total else 0:.1f}%)",
        "",
        "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME",
    ]
    key = SORT_KEYS[sort]
    rev = sort != "n"
    rows.sort(key=lambda d: d.name)
    rows.sort(key=key, reverse=rev)
    for d in rows[: limit or None]:
        use = 100 * d.active_objs // d.num_objs if d.num_objs else 0
        out.append(f"{d.num_objs:6d} {d.active_objs:6d} {use:3d}% {d.objsize / 1024:7.2f}K {d.num_slabs:6d} "
                   f"{d.objperslab:8d} {_kib(d):9d}K {d.name}")
    return "\n".join(out) + "\n"
