"""What an explained SLUB operation is decided by (``kslab explain --allocator slub``): the machine line, the
cache's geometry and the CPU's and nodes' state before the operation, and :func:`explain_operation`, which
snapshots them and runs the operation with the recorder on (:mod:`kslab.scenarios_slub` builds the scenarios).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .mm.slub.fastpath import get_freepointer
from .mm.slub.geometry import oo_objects, oo_order
from .mm.slub.machine import SlubKernel
from .mm.slub.slub_def import KmemCache
from .scenarios import Explanation, explain_call

__all__ = ["cache_state", "explain_operation", "machine_facts"]


def machine_facts(k: SlubKernel) -> dict[str, Any]:
    """The machine line of the header: CPUs, nodes, memory and the SLUB options that shape the paths."""
    cfg = k.sl.cfg
    options = ["CONFIG_SLUB", *(["CONFIG_SLUB_CPU_PARTIAL"] if cfg.CONFIG_SLUB_CPU_PARTIAL else []),
               "CONFIG_SLUB_STATS"]
    if cfg.slab_debug is not None:
        options.append(f"slab_debug={cfg.slab_debug}")
    if cfg.slab_nomerge:
        options.append("slab_nomerge")
    c = k.config
    return {"cpus": c.cpus, "nodes": c.nr_nodes, "mem": c.mem, "numa": c.CONFIG_NUMA, "options": options}


def _chain_len(k: SlubKernel, s: KmemCache, obj: int) -> int:
    n = 0
    while obj:
        n += 1
        obj = get_freepointer(k.a.mm.mem, s, obj)
    return n


def cache_state(k: SlubKernel, s: KmemCache, cpu: int) -> dict[str, Any]:
    """What decides a SLUB path on ``cpu``: the geometry, the CPU's cpu slab, freelist and partial list, and
    every node's partial list and counts."""
    c = s.cpu_slab[cpu]
    partial = []
    p = c.partial
    while p is not None:
        partial.append({"pfn": p.page.pfn, "free": p.objects - p.inuse})
        p = p.next
    slab = c.slab
    st: dict[str, Any] = {
        "cache": s.name, "object_size": s.object_size, "size": s.size, "objects": oo_objects(s.oo),
        "order": oo_order(s.oo), "min_order": oo_order(s.min), "offset": s.offset, "min_partial": s.min_partial,
        "cpu_partial": s.cpu_partial, "cpu_partial_slabs": s.cpu_partial_slabs, "cpu": cpu,
        "node": k.config.cpu_to_node(cpu), "cpu_slab": slab.page.pfn if slab is not None else 0,
        "cpu_slab_node": slab.nid if slab is not None else -1, "cpu_freelist": _chain_len(k, s, c.freelist),
        "slab_freelist": _chain_len(k, s, slab.freelist) if slab is not None else 0,
        "cpu_partial_list": partial, "nodes": [],
    }
    for nid, n in enumerate(s.node):
        st["nodes"].append({"node": nid, "nr_partial": n.nr_partial, "nr_slabs": n.nr_slabs,
                            "total_objects": n.total_objects,
                            "partial_free": sum(sl.objects - sl.inuse for sl in n.partial)})
    return st


def explain_operation(k: SlubKernel, operation: dict[str, Any], fn: Callable[[], Any], s: KmemCache,
                      cpu: int = 0) -> Explanation:
    """Snapshot ``s`` as ``cpu`` sees it, then run ``fn`` (one operation) with the recorder on."""
    state = cache_state(k, s, cpu)
    result, steps = explain_call(k, fn)  # type: ignore[arg-type]
    return Explanation(operation=operation, state=state, steps=steps, result=result, machine=machine_facts(k))
