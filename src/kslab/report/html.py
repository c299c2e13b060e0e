"""``kslab report``: one self-contained HTML file with interactive charts of a replay.

Everything is inline (CSS, JavaScript, the charts are SVG drawn by the page's own script); the
page fetches nothing, and its Content-Security-Policy forbids fetching anything.  The data goes in
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, and the
page's script only ever puts strings from the trace (cache names, call sites, markers) into the
document as text (``textContent``, SVG ``<title>``), never as markup.  The output is a function of
the input alone: same trace and options, byte-identical file.

The page opens with the model against the kernel's /proc/slabinfo when the caller passes the
comparisons (``report.compare``, the code ``kslab replay`` prints them with).  The page itself is
data in ``report.page`` (HTML, CSS), ``report.page_charts`` and ``report.page_app`` (JavaScript).

URL hash parameters (``report.html#sort=-num_objs&filter=kmalloc``): ``sort``/``filter`` for the
slabinfo table, ``psort``/``pfilter`` for the per-cache paths table, ``csort``/``cfilter`` for the
call-site table; a sort key is a column key, ``-`` in front for descending order.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..mm.slab_def import KmemCache
from ..mm.slabinfo import get_slabinfo
from .page import CSS, PAGE
from .page_app import APP_JS
from .page_charts import CHARTS_JS
from .stats import TraceStats, site_dict
from .timeline import PATH_KEYS, Sample, Timeline, occupancy

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
MAX_CALLERS = 5000


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cache_series(samples: list[Sample], names: list[str]) -> dict[str, list[list[int]]]:
    """Per cache its sampled [pages, active objects, partial, full, free slabs]; a series that never
    changes is stored as its one value (most caches of a trace do not move)."""
    out: dict[str, list[list[int]]] = {}
    for n in names:
        cols = list(zip(*(s.caches.get(n, (0, 0, 0, 0, 0)) for s in samples), strict=True)) if samples else []
        out[n] = [list(c) if len(set(c)) > 1 else [c[0]] for c in cols] or [[0]] * 5
    return out


def cache_state(c: KmemCache, ncpu: int) -> dict[str, Any]:
    """What SLAB holds for one cache now: each CPU's array, each node's shared array and alien arrays
    (rows: name, avail, limit, batchcount, touched) and each node's lists (setup_kmem_cache_node's
    fields: partial, full, free slabs, free_objects, free_limit, next_reap)."""
    arrays: list[list[Any]] = []
    for cpu, ac in enumerate(c.cpu_cache[:ncpu]):
        if ac is not None:
            arrays.append([f"CPU {cpu}", len(ac.entry), ac.limit, ac.batchcount, ac.touched])
    nodes: list[list[Any]] = []
    for nid, nd in enumerate(c.node):
        if nd is None:
            continue
        if nd.shared is not None:
            sh = nd.shared
            arrays.append([f"shared, node {nid}", len(sh.entry), sh.limit, sh.batchcount, sh.touched])
        for other, al in enumerate(nd.alien or []):
            if al is not None:
                arrays.append([f"alien, node {nid} -> {other}", len(al.entry), al.limit, al.batchcount, al.touched])
        nodes.append([nid, nd.slabs_partial.length, nd.slabs_full.length, nd.slabs_free.length, nd.free_objects,
                      nd.free_limit, nd.next_reap])
    pc = c.paths
    paths = (f"{pc.grow:,} grows, {pc.slabs_destroyed:,} slabs destroyed ({pc.reap_slabs:,} by the reaper), "
             f"{pc.alloc:,} allocations, {pc.free:,} frees")
    return {"arrays": arrays, "nodes": nodes, "paths": paths}


def slabinfo_table(k: Any) -> tuple[list[str], list[list[Any]]]:
    """The final /proc/slabinfo (get_slabinfo of every cache) as the page's table: columns and rows."""
    si_cols = ["name", "active_objs", "num_objs", "use", "objsize", "objperslab", "pagesperslab", "cache_kib",
               "limit", "batchcount", "sharedfactor", "active_slabs", "num_slabs", "sharedavail"]
    si_rows = []
    for c in k.slab_caches:
        d = get_slabinfo(c)
        si_rows.append([d.name, d.active_objs, d.num_objs, 100 * d.active_objs // d.num_objs if d.num_objs else 0,
                        d.objsize, d.objperslab, d.pagesperslab, d.num_slabs * d.pagesperslab * 4, d.limit,
                        d.batchcount, d.sharedfactor, d.active_slabs, d.num_slabs, d.sharedavail])
    return si_cols, si_rows


def cache_paths_table(window: Any) -> tuple[list[str], list[list[Any]]]:
    """The per-cache path counters of the replay's window and each cache's lists now: columns and rows."""
    path_cols = ["name", "allocs", "alloc_hit", "refill_shared", "refill_slab", "frees", "free_hit", "free_miss",
                 "to_shared", "free_block", "alien", "grow", "slabs_destroyed", "reaped_slabs", "pages_from_buddy",
                 "pages_to_buddy", "partial", "full", "free"]
    path_rows = []
    if window is not None:
        for wr in sorted(window.rows(), key=lambda row: str(row["name"])):
            lists_now = [sum(nd[key] for nd in wr["nodes"]) for key in ("partial", "full", "free")]
            path_rows.append([wr[c] for c in path_cols[:-3]] + lists_now)
    return path_cols, path_rows


def build_data(rep: Timeline, summary: dict[str, Any], ts: TraceStats, trace: str, top: int = 10,
               max_callers: int = MAX_CALLERS, kernel: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the page draws, as plain data (deterministic: sorted, integers, rounded times);
    ``kernel``: the comparisons with the real kernel (report.compare.Comparison.as_dict)."""
    k = rep.k
    samples = rep.samples
    names = sorted({n for s in samples for n in s.caches})
    peak = {n: max(s.caches.get(n, (0,))[0] for s in samples) for n in names}
    top_names = [n for n in sorted(names, key=lambda n: (-peak[n], n)) if peak[n] > 0][:top]
    mem: dict[str, list[int]] = {}
    objs: dict[str, list[int]] = {}
    lists: dict[str, dict[str, list[int]]] = {}
    for n in top_names:
        rows = [s.caches.get(n, (0, 0, 0, 0, 0)) for s in samples]
        mem[n] = [r[0] for r in rows]
        objs[n] = [r[1] for r in rows]
        lists[n] = {"partial": [r[2] for r in rows], "full": [r[3] for r in rows], "free": [r[4] for r in rows]}
    topset = set(top_names)
    mem_other = []
    objs_other = []
    all_lists: dict[str, list[int]] = {"partial": [], "full": [], "free": []}
    for s in samples:
        mo = oo = p = f = e = 0
        for n, r in s.caches.items():
            if n not in topset:
                mo += r[0]
                oo += r[1]
            p += r[2]
            f += r[3]
            e += r[4]
        mem_other.append(mo)
        objs_other.append(oo)
        all_lists["partial"].append(p)
        all_lists["full"].append(f)
        all_lists["free"].append(e)
    ncpu = k.nr_cpu_ids
    nnode = k.nr_node_ids
    arrays = {
        "cpu": [[s.cpu[c][0] for s in samples] for c in range(ncpu)],
        "cpu_limit": [[s.cpu[c][1] for s in samples] for c in range(ncpu)],
        "shared": [[s.shared[n][0] for s in samples] for n in range(nnode)],
        "shared_limit": [[s.shared[n][1] for s in samples] for n in range(nnode)],
    }
    paths = {key: [s.paths[i] for s in samples] for i, key in enumerate(PATH_KEYS)}
    x0 = samples[0].x if samples else 0
    markers = [{"x": x, "line": line, "text": text} for x, line, text in rep.markers if x >= x0]

    si_cols, si_rows = slabinfo_table(k)
    window = rep.window
    path_cols, path_rows = cache_paths_table(window)
    caller_cols = ["call_site", "hit", "bytes_alloc", "bytes_req", "frag_percent", "pingpong", "frees"]
    callers = ts.caller_rows(["hit", "bytes"], max_callers)
    caller_rows = [[d[c] for c in caller_cols] for d in (site_dict(s) for s in callers)]

    return {
        "trace": trace,
        "machine": {"cpus": ncpu, "nodes": nnode, "mem_mib": k.config.mem >> 20, "debug": k.debug,
                    "topology": k.config.topology_text()},
        "replay": summary,
        "stats": ts.summary(),
        "model": window.totals() if window is not None else None,
        "x": [s.x for s in samples],
        "line": [s.line for s in samples],
        "ts": [round(s.ts, 6) for s in samples],
        "top": top_names,
        "mem": mem, "mem_other": mem_other, "objs": objs, "objs_other": objs_other,
        "lists": lists, "lists_all": all_lists,
        "arrays": arrays, "paths": paths,
        "markers": markers, "markers_dropped": rep.markers_dropped,
        "occupancy": occupancy(k),
        "slabinfo": {"columns": si_cols, "rows": si_rows},
        "cache_paths": {"columns": path_cols, "rows": path_rows},
        "callers": {"columns": caller_cols, "rows": caller_rows, "total": len(ts.callers)},
        "cache_series": cache_series(samples, names),
        "cache_state": {c.name: cache_state(c, ncpu) for c in k.slab_caches},
        "kernel": kernel or [],
    }


def render_html(data: dict[str, Any]) -> str:
    title = f"kslab report: {data['trace']}"
    return (PAGE.replace("@TITLE@", html.escape(title, quote=True))
            .replace("@CSP@", CSP)
            .replace("@CSS@", CSS)
            .replace("@JS@", CHARTS_JS + APP_JS)
            .replace("@DATA@", _json_for_script(data)))


