"""A slabtop-style table of the model (procps slabtop's columns, summary and sort keys).

The numbers are slabtop's own (procps ``proc/slab.c``): "Active / Total Size" is the sum of
``objsize * active_objs`` over ``objsize * num_objs`` (object bytes, not pages), the CACHE SIZE
column is ``num_slabs * pagesperslab * 4K``, USE is procps' ``(unsigned)(100 * ((float)active / num))``:
computed in single precision and truncated, so 53 of 100 objects show (and sort) as 52 %, as in slabtop.
Sorting is descending (ascending for ``n``), like procps' stable mergesort; where procps keeps the
/proc/slabinfo order for equal keys, kslab breaks ties by name (ascending), so that the table does not
depend on the order the caches were created in.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..mm.slabinfo import SlabinfoData, get_slabinfo

if TYPE_CHECKING:
    from ..mm.kernel import Kernel

PAGE_KIB = 4

_F32 = struct.Struct("f")


def _f32(x: float) -> float:
    """x rounded to a C float (IEEE single precision)."""
    return float(_F32.unpack(_F32.pack(x))[0])


def slabtop_use(active: int, num: int) -> int:
    """procps' ``use`` of a cache (library/slabinfo.c, parse_slabinfo20): single-precision, truncated."""
    if not num:
        return 0
    return int(_f32(100.0 * _f32(_f32(active) / _f32(num))))


# slabtop's sort keys: a active objs, b objs per slab, c cache size, l slabs, v active slabs,
# n name, o objects, p pages per slab, s object size, u utilisation
SORT_KEYS: dict[str, Callable[[SlabinfoData], Any]] = {
    "a": lambda d: d.active_objs, "b": lambda d: d.objperslab, "c": lambda d: d.num_slabs * d.pagesperslab,
    "l": lambda d: d.num_slabs, "v": lambda d: d.active_slabs, "n": lambda d: d.name, "o": lambda d: d.num_objs,
    "p": lambda d: d.pagesperslab, "s": lambda d: d.objsize,
    "u": lambda d: slabtop_use(d.active_objs, d.num_objs),
}

SORT_HELP = ("a: active objects, b: objects per slab, c: cache size, l: slabs, v: active slabs, n: name, "
             "o: objects (default), p: pages per slab, s: object size, u: utilisation")


def check_sort_key(sort: str) -> str:
    """A slabtop sort key, either case (slabtop lowers it); an unknown one is a ValueError."""
    if sort.lower() in SORT_KEYS:
        return sort.lower()
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}: use one of {' '.join(SORT_KEYS)} ({SORT_HELP})")
    return sort


def _kib(d: SlabinfoData) -> int:
    return d.num_slabs * d.pagesperslab * PAGE_KIB


def sorted_rows(k: Kernel, sort: str = "o") -> list[SlabinfoData]:
    """One SlabinfoData per cache, in slabtop's order for ``sort`` (descending; by name ascending for ``n``
    and to break ties)."""
    key = SORT_KEYS[check_sort_key(sort)]
    rows = sorted((get_slabinfo(c) for c in k.slab_caches), key=lambda d: d.name)
    rows.sort(key=key, reverse=sort != "n")
    return rows


def top_summary(rows: list[SlabinfoData]) -> dict[str, Any]:
    """slabtop's five summary lines, as numbers (sizes in bytes)."""
    objs = sum(d.num_objs for d in rows)
    sizes = [d.objsize for d in rows]
    total_size = sum(d.num_objs * d.objsize for d in rows)
    return {
        "active_objs": sum(d.active_objs for d in rows), "objs": objs,
        "active_slabs": sum(d.active_slabs for d in rows), "slabs": sum(d.num_slabs for d in rows),
        "active_caches": sum(1 for d in rows if d.active_objs), "caches": len(rows),
        "active_size": sum(d.active_objs * d.objsize for d in rows), "total_size": total_size,
        "min_obj_size": min(sizes, default=0), "avg_obj_size": total_size // objs if objs else 0,
        "max_obj_size": max(sizes, default=0),
        "pages": sum(d.num_slabs * d.pagesperslab for d in rows),
    }


def row_dict(d: SlabinfoData) -> dict[str, Any]:
    """One table row with slabtop's column names (plus the slabinfo fields slabtop does not show)."""
    return {
        "name": d.name, "objs": d.num_objs, "active": d.active_objs,
        "use": slabtop_use(d.active_objs, d.num_objs), "obj_size": d.objsize,
        "slabs": d.num_slabs, "active_slabs": d.active_slabs, "obj_per_slab": d.objperslab,
        "pages_per_slab": d.pagesperslab, "cache_size_kib": _kib(d), "limit": d.limit,
        "batchcount": d.batchcount, "sharedfactor": d.sharedfactor, "sharedavail": d.sharedavail,
    }


def top_dict(k: Kernel, limit: int = 0, sort: str = "o") -> dict[str, Any]:
    rows = sorted_rows(k, sort)
    return {"sort": sort, "summary": top_summary(rows), "caches": [row_dict(d) for d in rows[: limit or None]]}


def _pct(a: int, b: int) -> float:
    return 100.0 * a / b if b else 0.0


def render_summary(s: dict[str, Any]) -> list[str]:
    return [
        f" Active / Total Objects (% used)    : {s['active_objs']} / {s['objs']} "
        f"({_pct(s['active_objs'], s['objs']):.1f}%)",
        f" Active / Total Slabs (% used)      : {s['active_slabs']} / {s['slabs']} "
        f"({_pct(s['active_slabs'], s['slabs']):.1f}%)",
        f" Active / Total Caches (% used)     : {s['active_caches']} / {s['caches']} "
        f"({_pct(s['active_caches'], s['caches']):.1f}%)",
        f" Active / Total Size (% used)       : {s['active_size'] / 1024:.2f}K / {s['total_size'] / 1024:.2f}K "
        f"({_pct(s['active_size'], s['total_size']):.1f}%)",
        f" Minimum / Average / Maximum Object : {s['min_obj_size'] / 1024:.2f}K / {s['avg_obj_size'] / 1024:.2f}K / "
        f"{s['max_obj_size'] / 1024:.2f}K",
    ]


HEADER = "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME"


def render_row(d: SlabinfoData) -> str:
    use = slabtop_use(d.active_objs, d.num_objs)
    return (f"{d.num_objs:6d} {d.active_objs:6d} {use:3d}% {d.objsize / 1024:7.2f}K {d.num_slabs:6d} "
            f"{d.objperslab:8d} {_kib(d):9d}K {d.name}")


def render_top(k: Kernel, limit: int = 0, sort: str = "o") -> str:
    """The slabtop summary and table, sorted by a slabtop key (descending, name ascending)."""
    rows = sorted_rows(k, sort)
    out = [*render_summary(top_summary(rows)), "", HEADER]
    out.extend(render_row(d) for d in rows[: limit or None])
    return "\n".join(out) + "\n"
