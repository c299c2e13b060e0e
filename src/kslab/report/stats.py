"""perf-kmem-style analysis of a trace, and per-cache analysis of its replay through the model.

Trace side (:class:`TraceStats`, what ``perf kmem stat --caller --alloc`` computes, from the kmem
events alone):

* per call site: allocations (``hit``), bytes requested and allocated, internal fragmentation
  ``(bytes_alloc - bytes_req) / bytes_alloc``, and ``pingpong``: frees on another CPU than the one
  that allocated the object (charged to the call site that allocated it);
* per allocation (object address): the same, summed over every allocation at that address;
* totals: bytes requested / allocated / freed, waste, cross-CPU frees, cross-node allocations, the
  page allocator's events.

Model side (:class:`CacheWindow`): for every cache, how many times each path of mm/slab.c ran
during the replay (the model's ``PathCounters``), the slabs on each node's partial/full/free lists
at the end, and the pages taken from and given back to the buddy allocator.  The counters are
differences from a baseline taken at the first replayed event, or at the sync with a real
/proc/slabinfo when there is one, so neither the boot nor the sync's own adjustments are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from ..mm.slabinfo import get_slabinfo
from ..trace.events import (
    KMALLOC_NODE,
    KMEM_CACHE_ALLOC_NODE,
    KMEM_CACHE_FREE,
    MM_PAGE_ALLOC,
    MM_PAGE_FREE,
    MM_PAGE_FREE_BATCHED,
    TraceEvent,
)
from ..trace.replay import Observer, Replayer

if TYPE_CHECKING:
    from ..mm.kernel import Kernel
    from ..mm.slab_def import KmemCache


# ---- the trace: perf kmem stat ------------------------------------------------------------------------


@dataclass(slots=True)
class SiteStat:
    """One call site (``--caller``) or one object address (``--alloc``)."""

    key: str
    call_site: str = ""
    hit: int = 0
    bytes_req: int = 0
    bytes_alloc: int = 0
    pingpong: int = 0
    frees: int = 0

    @property
    def frag(self) -> float:
        """perf kmem's fragmentation: 100 - 100 * bytes_req / bytes_alloc (percent)."""
        return 100.0 - 100.0 * self.bytes_req / self.bytes_alloc if self.bytes_alloc else 0.0


#: perf kmem's sort keys (``-s key1,key2,...``); every key sorts descending, like perf's.
SORT_KEYS: dict[str, Callable[[SiteStat], Any]] = {
    "frag": lambda s: s.frag, "hit": lambda s: s.hit, "bytes": lambda s: s.bytes_alloc,
    "pingpong": lambda s: s.pingpong, "callsite": lambda s: s.call_site, "ptr": lambda s: s.key,
}
DEFAULT_SORT = "frag,hit,bytes"


def parse_sort(spec: str) -> list[str]:
    """``frag,hit,bytes`` -> ["frag", "hit", "bytes"]; an unknown key is a ValueError."""
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    if not keys:
        raise ValueError(f"-s {spec!r}: give sort keys, e.g. frag,hit,bytes")
    for k in keys:
        if k not in SORT_KEYS:
            raise ValueError(f"unknown sort key {k!r} in -s {spec!r}: use {', '.join(SORT_KEYS)}")
    return keys


def sort_stats(rows: Iterable[SiteStat], keys: list[str]) -> list[SiteStat]:
    """perf's order: by the first key, ties by the next...; every key descending; last resort: the key."""
    out = sorted(rows, key=lambda s: s.key)
    for k in reversed(keys):
        out.sort(key=SORT_KEYS[k], reverse=True)
    return out


@dataclass(slots=True)
class PageTotals:
    """The page events of a trace (``perf kmem stat --page``'s totals): mm_page_alloc and mm_page_free lines,
    and the pages they cover (2^order each)."""

    allocs: int = 0
    pages_allocated: int = 0
    frees: int = 0
    pages_freed: int = 0


class TraceStats:
    """What ``perf kmem stat`` computes, fed one event at a time (``observe`` or ``wrap``).

    The per-site tables (``callers``, ``allocs``, ``live``) and the object totals are attributes of their own;
    the page events' totals are in ``pages`` (a :class:`PageTotals`)."""

    def __init__(self, cpu_to_node: Callable[[int], int] | None = None) -> None:
        self.callers: dict[str, SiteStat] = {}
        self.allocs: dict[int, SiteStat] = {}
        # live objects: ptr -> [alloc cpu, bytes_alloc, call site stat, ptr stat]
        self.live: dict[int, tuple[int, int, SiteStat, SiteStat]] = {}
        self.cpu_to_node = cpu_to_node
        self.nr_allocs = self.nr_frees = 0
        self.total_req = self.total_alloc = self.total_freed = 0
        self.cross_cpu_frees = 0
        self.node_allocs = self.cross_node_allocs = 0
        self.failed_allocs = 0
        self.null_frees = 0
        self.unknown_frees = 0
        self.pages = PageTotals()
        self.first_line = self.last_line = 0
        self.cpus: set[int] = set()

    def observe(self, ev: TraceEvent) -> None:
        kind = ev.kind
        if kind <= KMEM_CACHE_ALLOC_NODE:
            self._alloc(ev)
        elif kind <= KMEM_CACHE_FREE:
            self._free(ev)
        elif kind == MM_PAGE_ALLOC:
            pages = self.pages
            pages.allocs += 1
            pages.pages_allocated += 1 << max(ev.order, 0)
        elif kind in (MM_PAGE_FREE, MM_PAGE_FREE_BATCHED):
            pages = self.pages
            pages.frees += 1
            pages.pages_freed += 1 << max(ev.order, 0)
        else:
            return
        if not self.first_line:
            self.first_line = ev.lineno
        self.last_line = ev.lineno

    def wrap(self, events: Iterable[TraceEvent]) -> Iterator[TraceEvent]:
        """The events, unchanged, each observed on its way through."""
        observe = self.observe
        for ev in events:
            observe(ev)
            yield ev

    def _alloc(self, ev: TraceEvent) -> None:
        ptr = ev.ptr
        if not ptr:
            self.failed_allocs += 1
            return
        self.cpus.add(ev.cpu)
        self.nr_allocs += 1
        req, alloc = ev.bytes_req, ev.bytes_alloc
        self.total_req += req
        self.total_alloc += alloc
        site = ev.call_site
        c = self.callers.get(site)
        if c is None:
            c = self.callers[site] = SiteStat(site, site)
        c.hit += 1
        c.bytes_req += req
        c.bytes_alloc += alloc
        a = self.allocs.get(ptr)
        if a is None:
            a = self.allocs[ptr] = SiteStat(f"{ptr:#x}")
        a.call_site = site
        a.hit += 1
        a.bytes_req += req
        a.bytes_alloc += alloc
        self.live[ptr] = (ev.cpu, alloc, c, a)
        if ev.kind in (KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE) and ev.node >= 0:
            self.node_allocs += 1
            if self.cpu_to_node is not None and self.cpu_to_node(ev.cpu) != ev.node:
                self.cross_node_allocs += 1

    def _free(self, ev: TraceEvent) -> None:
        ptr = ev.ptr
        if ptr <= 16:  # kfree(NULL), kfree(ZERO_SIZE_PTR)
            self.null_frees += 1
            return
        self.cpus.add(ev.cpu)
        rec = self.live.pop(ptr, None)
        if rec is None:
            self.unknown_frees += 1
            return
        self.nr_frees += 1
        cpu, alloc, c, a = rec
        self.total_freed += alloc
        c.frees += 1
        a.frees += 1
        if cpu != ev.cpu:
            self.cross_cpu_frees += 1
            c.pingpong += 1
            a.pingpong += 1

    # ---- results ---------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        waste = self.total_alloc - self.total_req
        return {
            "allocations": self.nr_allocs, "frees": self.nr_frees, "failed_allocations": self.failed_allocs,
            "frees_of_objects_allocated_before_the_trace": self.unknown_frees, "null_frees": self.null_frees,
            "live_objects_at_end": len(self.live),
            "bytes_requested": self.total_req, "bytes_allocated": self.total_alloc, "bytes_freed": self.total_freed,
            "net_bytes_allocated": self.total_alloc - self.total_freed, "bytes_wasted": waste,
            "fragmentation_percent": round(100.0 * waste / self.total_alloc, 6) if self.total_alloc else 0.0,
            "cross_cpu_frees": self.cross_cpu_frees, "node_allocations": self.node_allocs,
            "cross_node_allocations": self.cross_node_allocs, "call_sites": len(self.callers),
            "page_allocs": self.pages.allocs, "pages_allocated": self.pages.pages_allocated,
            "page_frees": self.pages.frees, "pages_freed": self.pages.pages_freed, "cpus": sorted(self.cpus),
        }

    def caller_rows(self, sort: list[str], limit: int = 0) -> list[SiteStat]:
        return sort_stats(self.callers.values(), sort)[: limit or None]

    def alloc_rows(self, sort: list[str], limit: int = 0) -> list[SiteStat]:
        rows = list(self.allocs.values())
        if "ptr" in sort:  # addresses sort as numbers
            rows.sort(key=lambda s: int(s.key, 16))
            for k in reversed(sort):
                rows.sort(key=(lambda s: int(s.key, 16)) if k == "ptr" else SORT_KEYS[k], reverse=True)
            return rows[: limit or None]
        return sort_stats(rows, sort)[: limit or None]


def site_dict(s: SiteStat, with_site: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"hit": s.hit, "bytes_req": s.bytes_req, "bytes_alloc": s.bytes_alloc,
                         "frag_percent": round(s.frag, 3), "pingpong": s.pingpong, "frees": s.frees}
    if with_site:
        d["ptr"] = s.key
    d["call_site"] = s.call_site
    return d


# ---- the model: per-cache paths over a window of the replay -----------------------------------------

#: Path counters shown per cache: (PathCounters field, short column title).
PATHS: tuple[tuple[str, str], ...] = (
    ("alloc", "allocs"), ("alloc_hit", "alloc_hit"), ("refill_shared", "refill_shared"),
    ("refill_slab", "refill_slab"), ("free", "frees"), ("free_hit", "free_hit"), ("free_miss", "free_miss"),
    ("flush_shared", "to_shared"), ("flush_free_block", "free_block"), ("alien_free", "alien"),
    ("grow", "grow"), ("slabs_destroyed", "slabs_destroyed"), ("reap_slabs", "reaped_slabs"),
)


def _counters(c: KmemCache) -> tuple[int, ...]:
    p = c.paths
    return tuple(getattr(p, f) for f, _ in PATHS)


class CacheWindow:
    """Per-cache path counters since a baseline (see the module docstring), and the slab lists now."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.base: dict[KmemCache, tuple[int, ...]] = {}
        self.pgalloc0 = 0
        self.pgfree0 = 0
        self.start_line = 0
        self.rebase()

    def rebase(self, lineno: int = 0) -> None:
        self.base = {c: _counters(c) for c in self.k.slab_caches}
        pa = self.k.page_alloc
        self.pgalloc0 = sum(pa.vmstat.pgalloc)
        self.pgfree0 = pa.vmstat.pgfree
        self.start_line = lineno

    def rows(self, all_caches: bool = False) -> list[dict[str, Any]]:
        out = []
        zero = (0,) * len(PATHS)
        for c in self.k.slab_caches:
            now = _counters(c)
            base = self.base.get(c, zero)
            delta = [a - b for a, b in zip(now, base, strict=True)]
            if not all_caches and not any(delta):
                continue
            row: dict[str, Any] = {"name": c.name}
            row.update({title: v for (_, title), v in zip(PATHS, delta, strict=True)})
            pages = 1 << c.gfporder
            row["pages_from_buddy"] = row["grow"] * pages
            row["pages_to_buddy"] = row["slabs_destroyed"] * pages
            nodes = []
            for nid, n in enumerate(c.node):
                if n is None:
                    continue
                nodes.append({"node": nid, "partial": len(n.slabs_partial), "full": len(n.slabs_full),
                              "free": len(n.slabs_free), "free_objects": n.free_objects,
                              "shared_avail": len(n.shared.entry) if n.shared is not None else 0})
            row["nodes"] = nodes
            si = get_slabinfo(c)
            row["active_objs"] = si.active_objs
            row["num_objs"] = si.num_objs
            row["pages_now"] = si.num_slabs * si.pagesperslab
            out.append(row)
        out.sort(key=lambda r: (-(r["allocs"] + r["frees"]), r["name"]))
        return out

    def totals(self) -> dict[str, Any]:
        pa = self.k.page_alloc
        return {"start_line": self.start_line, "pages_allocated": sum(pa.vmstat.pgalloc) - self.pgalloc0,
                "pages_freed": pa.vmstat.pgfree - self.pgfree0}


class WindowWatch(Observer):
    """An observer of a replay that keeps a :class:`CacheWindow` (``.window``): based at the first event,
    rebased at the sync with a real /proc/slabinfo (``--sync-on``).  ``WindowWatch.attach(rep)``."""

    window: CacheWindow | None = None

    @classmethod
    def attach(cls, rep: Replayer) -> Self:
        """A new watch, subscribed to ``rep``."""
        watch = cls(rep)
        rep.subscribe(watch)
        return watch

    def __init__(self, rep: Replayer) -> None:
        self.k = rep.k

    def on_start(self, rep: Any, ev: TraceEvent) -> None:
        self.window = CacheWindow(self.k)
        self.window.start_line = ev.lineno

    def on_sync(self, rep: Any, ev: TraceEvent) -> None:
        """After the event at which the model synced with a real /proc/slabinfo."""
        assert self.window is not None
        self.window.rebase(ev.lineno)


# ---- rendering ---------------------------------------------------------------------------------------

RULE = "-" * 105


def _site_table(title: str, rows: list[SiteStat], total: int, ptr: bool) -> list[str]:
    out = [RULE, f" {title:<34s} | Total_alloc/Per | Total_req/Per   | Hit      | Ping-pong | Frag"
           + ("    | Callsite" if ptr else ""), RULE]
    for s in rows:
        per_a = s.bytes_alloc // s.hit if s.hit else 0
        per_r = s.bytes_req // s.hit if s.hit else 0
        line = (f" {s.key:<34s} | {s.bytes_alloc:9d}/{per_a:<5d} | {s.bytes_req:9d}/{per_r:<5d} | {s.hit:8d} | "
                f"{s.pingpong:9d} | {s.frag:6.3f}%")
        if ptr:
            line += f" | {s.call_site}"
        out.append(line)
    if total > len(rows):
        out.append(f" ... and {total - len(rows)} more (-l 0 shows every row)")
    out.append(RULE)
    return out


def render_summary(s: dict[str, Any]) -> list[str]:
    return [
        "SUMMARY (SLAB allocator)",
        "========================",
        f"Total bytes requested: {s['bytes_requested']}",
        f"Total bytes allocated: {s['bytes_allocated']}",
        f"Total bytes freed:     {s['bytes_freed']}",
        f"Net total bytes allocated: {s['net_bytes_allocated']}",
        f"Total bytes wasted on internal fragmentation: {s['bytes_wasted']}",
        f"Internal fragmentation: {s['fragmentation_percent']:.6f}%",
        f"Cross CPU frees: {s['cross_cpu_frees']}/{s['frees']}",
        f"Cross node allocations: {s['cross_node_allocations']}/{s['node_allocations']}",
        f"Allocations: {s['allocations']} ({s['failed_allocations']} failed), frees: {s['frees']} "
        f"(+{s['frees_of_objects_allocated_before_the_trace']} of objects allocated before the trace, "
        f"{s['null_frees']} of NULL), live at the end: {s['live_objects_at_end']}",
        f"Page allocator: {s['page_allocs']} allocations ({s['pages_allocated']} pages), "
        f"{s['page_frees']} frees ({s['pages_freed']} pages)",
    ]


CACHE_COLS: tuple[tuple[str, str, int], ...] = (
    # (row key, title, width)
    ("allocs", "Allocs", 8), ("alloc_hit", "AllocHit", 8), ("refill_shared", "RefillSh", 8),
    ("refill_slab", "RefillSl", 8), ("frees", "Frees", 8), ("free_hit", "FREEHIT", 8), ("free_miss", "FREEMISS", 8),
    ("to_shared", "ToShared", 8), ("free_block", "FreeBlk", 7), ("alien", "Alien", 6), ("grow", "Grow", 6),
    ("slabs_destroyed", "Destroy", 7), ("pages_from_buddy", "PgIn", 6), ("pages_to_buddy", "PgOut", 6),
)


def render_caches(rows: list[dict[str, Any]], totals: dict[str, Any], name_width: int = 20) -> list[str]:
    w = max([name_width, *(len(r["name"]) for r in rows)])
    head = f" {'Cache':<{w}s}" + "".join(f" {t:>{n}s}" for _, t, n in CACHE_COLS) + "  Slabs partial/full/free"
    rule = "-" * len(head)
    out = [f"Per cache, in the model (counted from trace line {totals['start_line']}):", rule, head, rule]
    for r in rows:
        lists = " ".join(f"n{n['node']}:{n['partial']}/{n['full']}/{n['free']}" for n in r["nodes"])
        out.append(f" {r['name']:<{w}s}" + "".join(f" {r[key]:>{n}d}" for key, _, n in CACHE_COLS) + f"  {lists}")
    if rows:
        tot = {key: sum(r[key] for r in rows) for key, _, _ in CACHE_COLS}
        out.append(rule)
        out.append(f" {'total':<{w}s}" + "".join(f" {tot[key]:>{n}d}" for key, _, n in CACHE_COLS))
    out.append(rule)
    out.append(f"Buddy allocator (the model): {totals['pages_allocated']} pages allocated, "
               f"{totals['pages_freed']} pages freed")
    return out


def render_stats(d: dict[str, Any]) -> str:
    """The text report of ``stats_dict``'s result."""
    out: list[str] = []
    if "callers" in d:
        rows = [SiteStat(r["call_site"], r["call_site"], r["hit"], r["bytes_req"], r["bytes_alloc"], r["pingpong"],
                         r["frees"]) for r in d["callers"]]
        out += _site_table("Callsite", rows, d["summary"]["call_sites"], False)
        out.append("")
    if "allocs" in d:
        rows = [SiteStat(r["ptr"], r["call_site"], r["hit"], r["bytes_req"], r["bytes_alloc"], r["pingpong"],
                         r["frees"]) for r in d["allocs"]]
        out += _site_table("Alloc Ptr", rows, d["alloc_ptrs"], True)
        out.append("")
    out += render_summary(d["summary"])
    if "caches" in d:
        out.append("")
        out += render_caches(d["caches"], d["model"])
    if d.get("freelist_random"):
        out.append("")
        out += render_freelist_random(d["freelist_random"])
    return "\n".join(out) + "\n"


#: render_freelist_random's columns: (heading, key of a cache's row of cli.replay.freelist_dict)
FREELIST_COLUMNS = (("learnt after", "learned after"), ("learning", "learning"), ("prng", "prandom"),
                    ("starts", "start"), ("predicted", "predicted"), ("wrong", "mispredicted"),
                    ("unmatched", "unmatched"))


def render_freelist_random(rows: dict[str, dict[str, int]], name_width: int = 20) -> list[str]:
    """CONFIG_SLAB_FREELIST_RANDOM in the replay (trace.replay.shuffle), per cache: the fresh objects its
    random_seq took to learn, and what became of the objects its fresh slabs handed out."""
    from ..trace.replay.shuffle import FreshAlloc  # noqa: PLC0415
    keys = {"learned after": "learned after", "learning": FreshAlloc.LEARNING, "prandom": FreshAlloc.PRANDOM,
            "start": FreshAlloc.START, "predicted": FreshAlloc.PREDICTED, "mispredicted": FreshAlloc.MISPREDICTED,
            "unmatched": FreshAlloc.UNMATCHED}
    head = f"{'Cache (FREELIST_RANDOM)':<{name_width + 4}}" + "".join(f"{h:>13}" for h, _ in FREELIST_COLUMNS)
    out = [head, "-" * len(head)]

    def cell(row: dict[str, int], key: str) -> str:
        v = row.get(keys[key])
        return "-" if v is None else str(v)
    for name, row in sorted(rows.items(), key=lambda kv: (-kv[1].get(FreshAlloc.PREDICTED, 0), kv[0])):
        out.append(f"{name:<{name_width + 4}}" + "".join(f"{cell(row, key):>13}" for _, key in FREELIST_COLUMNS))
    out.append("(learnt after: fresh objects it took to learn the cache's random_seq; learning, prng: fresh objects "
               "before it was known, or of slabs shuffled without it, followed from the trace; starts: slabs whose "
               "start position their first object gave; predicted, wrong: the later fresh objects)")
    return out


def stats_dict(ts: TraceStats, window: CacheWindow | None, sort: list[str], caller: bool, alloc: bool,
               lines: int = 0, all_caches: bool = False) -> dict[str, Any]:
    """The whole analysis as plain data (what ``kslab stats --json`` prints)."""
    d: dict[str, Any] = {"sort": sort, "summary": ts.summary()}
    if caller:
        d["callers"] = [site_dict(s) for s in ts.caller_rows(sort, lines)]
    if alloc:
        d["allocs"] = [site_dict(s, True) for s in ts.alloc_rows(sort, lines)]
        d["alloc_ptrs"] = len(ts.allocs)
    if window is not None:
        d["caches"] = window.rows(all_caches)
        d["model"] = window.totals()
    return d
