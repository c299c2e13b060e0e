# ruff: noqa: RUF001  (the Chinese summaries use full-width punctuation on purpose)
"""The scenarios of ``kslab explain --allocator slub``: one branch of 6.12's mm/slub.c each.

As :mod:`kslab.scenarios` does for SLAB, a scenario builds the state for its branch *by running SLUB's own
rules* on a booted :class:`~kslab.mm.slub.machine.SlubKernel` (allocations, frees, a flush), then explains the
first operation that takes the branch; :class:`~kslab.scenarios.ScenarioError` if the model never takes it.
The steps come from the recorder ``SlubKernel.explain`` (``kslab.mm.slub`` appends to it, never prints).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .mm.gfp import GFP_KERNEL
from .mm.slub.flags import SLAB_RED_ZONE
from .mm.slub.geometry import oo_objects, oo_order
from .mm.slub.kmalloc import kmalloc_slab
from .mm.slub.machine import SlubKernel
from .mm.slub.slab import Slab
from .mm.slub.slub_def import KmemCache
from .scenarios import Explanation, ScenarioError
from .scenarios_slub_state import explain_operation, machine_facts

Op = tuple[dict[str, Any], Callable[[], Any]]
Predicate = Callable[[set[tuple[str, str]]], bool]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: dict[str, str]
    build: Callable[[SlubKernel, int], Explanation]
    size: int = 64
    cpus: int = 1
    nodes: int = 1
    min_cpus: int = 1
    min_nodes: int = 1
    slab_debug: str | None = None  # the slab_debug= the scenario boots with when --slab-debug is not given


def _cache(k: SlubKernel, size: int) -> KmemCache:
    s = kmalloc_slab(k.sl, size, GFP_KERNEL) if 0 < size <= 8192 else None
    if s is None:
        raise ScenarioError(f"--size {size}: no kmalloc cache serves that size (1..8192 bytes)")
    return s


def _kmalloc(k: SlubKernel, size: int, count: int, cpu: int) -> list[int]:
    objs: list[int] = []
    for _ in range(count):
        p = k.kmalloc(size, cpu=cpu)
        if not p:
            raise ScenarioError(f"kmalloc({size}) failed on CPU {cpu} after {len(objs)} objects: the machine is "
                                "too small")
        objs.append(p)
    return objs


def _slabs(k: SlubKernel, size: int, n: int, cpu: int) -> list[list[int]]:
    """``n`` slabs filled on ``cpu``, as lists of their objects (the last is the CPU's cpu slab, used up)."""
    s = _cache(k, size)
    per = oo_objects(s.oo)
    objs = _kmalloc(k, size, n * per, cpu)
    groups: dict[int, list[int]] = {}
    for p in objs:
        slab = k.a.virt_to_slab(p)
        assert slab is not None
        groups.setdefault(id(slab), []).append(p)
    return list(groups.values())


def _slab_of(k: SlubKernel, p: int) -> Slab:
    slab = k.a.virt_to_slab(p)
    assert slab is not None
    return slab


def _first(k: SlubKernel, s: KmemCache, cpu: int, ops: Iterable[Op], wanted: Predicate, what: str
           ) -> tuple[int, Explanation]:
    """Run ``ops`` in order, each explained; (how many ran before, the first whose steps satisfy ``wanted``)."""
    for i, (op, fn) in enumerate(ops):
        ex = explain_operation(k, op, fn, s, op.get("cpu", cpu))
        if wanted(set(ex.decisions())):
            return i, ex
    raise ScenarioError(f"the model never took the {what} branch in this setup (see 'kslab explain --list "
                        "--allocator slub')")


def _has(*keys: tuple[str, str]) -> Predicate:
    return lambda s: set(keys) <= s


def _allocs(k: SlubKernel, size: int, cpu: int, limit: int, node: int = -1) -> Iterable[Op]:
    for _ in range(limit):
        if node < 0:
            yield {"call": "kmalloc", "size": size, "cpu": cpu}, (lambda: k.kmalloc(size, cpu=cpu))
        else:
            yield ({"call": "kmalloc_node", "size": size, "cpu": cpu, "node": node},
                   (lambda: k.kmalloc_node(size, node=node, cpu=cpu)))


def _frees(k: SlubKernel, objs: Iterable[int], cpu: int) -> Iterable[Op]:
    for p in objs:
        yield {"call": "kfree", "ptr": p, "cpu": cpu}, (lambda p=p: k.kfree(p, cpu=cpu))  # type: ignore[misc]


def _done(ex: Explanation, name: str, setup: list[dict[str, Any]]) -> Explanation:
    ex.scenario = name
    ex.setup = setup
    return ex


def _km(size: int, count: int, cpu: int, **more: Any) -> dict[str, Any]:
    return {"do": "kmalloc", "size": size, "count": count, "cpu": cpu, **more}


def _kf(count: int, cpu: int, what: str, **more: Any) -> dict[str, Any]:
    return {"do": "kfree", "count": count, "cpu": cpu, "what": what, **more}


# ---- allocation ------------------------------------------------------------------------------------

def _alloc_fastpath(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    _kmalloc(k, size, 1, 0)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1), _has(("__slab_alloc_node", "fastpath")), "alloc fast path")
    return _done(ex, "alloc-fastpath", [_km(size, 1, 0)])


def _alloc_new_slab(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    n, ex = _first(k, s, 0, _allocs(k, size, 0, 2 * oo_objects(s.oo) + 1),
                   _has(("___slab_alloc", "new_slab"), ("allocate_slab", "oo")), "new_slab")
    return _done(ex, "alloc-new-slab", [_km(size, n, 0)] if n else [])


def _alloc_bypass(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    n, ex = _first(k, s, 0, _allocs(k, size, 0, 2 * oo_objects(s.oo) + 1), _has(("___slab_alloc", "bypass")),
                   "DEACTIVATE_BYPASS")
    return _done(ex, "alloc-bypass", [_km(size, n, 0)])


def _alloc_refill(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    objs = _kmalloc(k, size, oo_objects(s.oo), 0)
    k.kfree(objs[0], cpu=1)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1), _has(("___slab_alloc", "refill")), "ALLOC_REFILL")
    return _done(ex, "alloc-refill", [_km(size, len(objs), 0, what="one_slab"), _kf(1, 1, "first", ptr=objs[0])])


def _alloc_cpu_partial(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _slabs(k, size, 2, 0)
    k.kfree(groups[0][0], cpu=0)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1), _has(("___slab_alloc", "cpu_partial")), "CPU_PARTIAL_ALLOC")
    return _done(ex, "alloc-cpu-partial", [_km(size, 2 * len(groups[0]), 0, what="two_slabs"),
                                           _kf(1, 0, "first_slab", ptr=groups[0][0])])


def _to_node_partial(k: SlubKernel, size: int, nslabs: int, cpu: int) -> list[list[int]]:
    """``nslabs`` filled on ``cpu``, one object freed from each but the last, then the CPU flushed: the slabs
    end on their node's partial list (the last, full, on no list)."""
    s = _cache(k, size)
    groups = _slabs(k, size, nslabs, cpu)
    for g in groups[:-1]:
        k.kfree(g[0], cpu=cpu)
    k.a.flush_cpu_slab(s, cpu)
    return groups


def _alloc_node_partial(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _to_node_partial(k, size, 3, 0)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1), _has(("get_partial_node", "take")), "ALLOC_FROM_PARTIAL")
    return _done(ex, "alloc-node-partial", [_km(size, sum(map(len, groups)), 0, what="slabs", slabs=len(groups)),
                                            _kf(len(groups) - 1, 0, "one_per_slab"),
                                            {"do": "flush_cpu_slab", "cpu": 0}])


def _alloc_any_partial(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    if k.nr_node_ids < 2:
        raise ScenarioError("alloc-any-partial needs 2 NUMA nodes: use --nodes 2 (with --cpus 2 or more)")
    cpu_b = k.config.topology[1][0]
    groups = _to_node_partial(k, size, s.min_partial + 3, cpu_b)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1), _has(("get_any_partial", "try"), ("get_partial_node", "take")),
                   "get_any_partial")
    return _done(ex, "alloc-any-partial", [
        _km(size, sum(map(len, groups)), cpu_b, node=1, what="slabs", slabs=len(groups)),
        _kf(len(groups) - 1, cpu_b, "one_per_slab"), {"do": "flush_cpu_slab", "cpu": cpu_b}])


def _alloc_order_fallback(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    if oo_order(s.oo) == oo_order(s.min):
        raise ScenarioError(f"{s.name}: oo and min have the same order ({oo_order(s.oo)}), no fallback: use "
                            "--size 4096 (or another size whose slabs are larger than its objects need)")
    pa = k.page_alloc
    held = []
    for order in range(10, -1, -1):
        while (page := pa.alloc_pages(GFP_KERNEL, order, 0)) is not None:
            held.append((page, order))
    if not held:
        raise ScenarioError("no page could be taken: the machine is too small")
    page, order = held.pop()
    pa.free_pages(page, order, 0)
    small = []
    while (p := pa.alloc_pages(GFP_KERNEL, 0, 0)) is not None:
        small.append(p)
    freed = [p for p in small if p.pfn % 2 == 0]
    for p in freed:
        pa.free_pages(p, 0, 0)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1), _has(("allocate_slab", "fallback")), "ORDER_FALLBACK")
    return _done(ex, "alloc-order-fallback", [{"do": "fragment", "blocks": len(held) + 1, "order": order,
                                               "small": len(small), "freed": len(freed)}])


def _alloc_node_mismatch(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    if k.nr_node_ids < 2:
        raise ScenarioError("alloc-node-mismatch needs 2 NUMA nodes: use --nodes 2 (with --cpus 2 or more)")
    _kmalloc(k, size, 1, 0)
    _, ex = _first(k, s, 0, _allocs(k, size, 0, 1, node=1), _has(("___slab_alloc", "node_mismatch")),
                   "ALLOC_NODE_MISMATCH")
    return _done(ex, "alloc-node-mismatch", [_km(size, 1, 0)])


# ---- free ------------------------------------------------------------------------------------------

def _free_fastpath(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    objs = _kmalloc(k, size, 2, 0)
    _, ex = _first(k, s, 0, _frees(k, objs[1:], 0), _has(("do_slab_free", "fastpath")), "free fast path")
    return _done(ex, "free-fastpath", [_km(size, 2, 0)])


def _free_frozen(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    objs = _kmalloc(k, size, 1, 0)
    _, ex = _first(k, s, 1, _frees(k, objs, 1), _has(("__slab_free", "frozen")), "FREE_FROZEN")
    return _done(ex, "free-frozen", [_km(size, 1, 0)])


def _free_to_cpu_partial(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _slabs(k, size, 2, 0)
    _, ex = _first(k, s, 0, _frees(k, groups[0][:1], 0), _has(("__slab_free", "to_cpu_partial")), "CPU_PARTIAL_FREE")
    return _done(ex, "free-to-cpu-partial", [_km(size, 2 * len(groups[0]), 0, what="two_slabs")])


def _free_cpu_partial_drain(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    n = s.cpu_partial_slabs + 2
    groups = _slabs(k, size, n, 0)
    firsts = [g[0] for g in groups[:-1]]
    i, ex = _first(k, s, 0, _frees(k, firsts, 0), _has(("put_cpu_partial", "drain")), "CPU_PARTIAL_DRAIN")
    return _done(ex, "free-cpu-partial-drain", [_km(size, sum(map(len, groups)), 0, what="slabs", slabs=n),
                                                _kf(i, 0, "one_per_slab")])


def _free_discard(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _to_node_partial(k, size, s.min_partial + 3, 0)
    rest = groups[0][1:]
    i, ex = _first(k, s, 0, _frees(k, rest, 0), _has(("__slab_free", "discard")), "discard_slab")
    return _done(ex, "free-discard", [_km(size, sum(map(len, groups)), 0, what="slabs", slabs=len(groups)),
                                      _kf(len(groups) - 1, 0, "one_per_slab"), {"do": "flush_cpu_slab", "cpu": 0},
                                      _kf(i, 0, "rest_of_first")])


def _bulk_free(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _slabs(k, size, 2, 0)
    a, b = groups[0][:3], groups[1][-3:]
    objs = [x for pair in zip(a, b, strict=True) for x in pair]
    op = {"call": "kmem_cache_free_bulk", "cache": s.name, "nr": len(objs), "cpu": 0}
    ex = explain_operation(k, op, lambda: k.kmem_cache_free_bulk(s, objs, cpu=0), s, 0)
    return _done(ex, "bulk-free", [_km(size, 2 * len(groups[0]), 0, what="two_slabs")])


# ---- flushing, shrinking, bulk allocation -----------------------------------------------------------

def _flush_cpu_slab(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _slabs(k, size, 2, 0)
    k.kfree(groups[0][0], cpu=0)
    k.kfree(groups[1][-1], cpu=0)
    ex = explain_operation(k, {"call": "flush_cpu_slab", "cache": s.name, "cpu": 0},
                           lambda: k.a.flush_cpu_slab(s, 0), s, 0)
    return _done(ex, "flush-cpu-slab", [_km(size, 2 * len(groups[0]), 0, what="two_slabs"),
                                        _kf(1, 0, "first_slab", ptr=groups[0][0]),
                                        _kf(1, 0, "cpu_slab", ptr=groups[1][-1])])


def _deactivate_remote(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    objs = _kmalloc(k, size, 4, 0)
    for p in objs[:2]:
        k.kfree(p, cpu=1)
    ex = explain_operation(k, {"call": "flush_cpu_slab", "cache": s.name, "cpu": 0},
                           lambda: k.a.flush_cpu_slab(s, 0), s, 0)
    if ("deactivate_slab", "to_tail") not in set(ex.decisions()):
        raise ScenarioError("the model did not put the slab at the tail (DEACTIVATE_TO_TAIL)")
    return _done(ex, "deactivate-remote-frees", [_km(size, 4, 0), _kf(2, 1, "first")])


def _shrink(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    groups = _slabs(k, size, 3, 0)
    for p in groups[0]:
        k.kfree(p, cpu=0)
    half = groups[1][: len(groups[1]) // 2]
    for p in half:
        k.kfree(p, cpu=0)
    k.a.flush_cpu_slab(s, 0)
    ex = explain_operation(k, {"call": "kmem_cache_shrink", "cache": s.name, "cpu": 0},
                           lambda: k.kmem_cache_shrink(s, 0), s, 0)
    return _done(ex, "shrink", [_km(size, 3 * len(groups[0]), 0, what="slabs", slabs=3),
                                _kf(len(groups[0]), 0, "all_of_first"), _kf(len(half), 0, "half_of_second"),
                                {"do": "flush_cpu_slab", "cpu": 0}])


def _bulk_alloc(k: SlubKernel, size: int) -> Explanation:
    s = _cache(k, size)
    per = oo_objects(s.oo)
    _kmalloc(k, size, per - 2, 0)
    nr = per // 2
    op = {"call": "kmem_cache_alloc_bulk", "cache": s.name, "nr": nr, "cpu": 0}
    ex = explain_operation(k, op, lambda: k.kmem_cache_alloc_bulk(s, nr, cpu=0), s, 0)
    return _done(ex, "bulk-alloc", [_km(size, per - 2, 0)])


# ---- debug caches (slab_debug=) ----------------------------------------------------------------------

def _debug_cache(k: SlubKernel, size: int, name: str) -> KmemCache:
    from .mm.slub.geometry import kmem_cache_debug  # noqa: PLC0415
    s = _cache(k, size)
    if not kmem_cache_debug(s):
        raise ScenarioError(f"{name} needs a debug cache: boot with --slab-debug (e.g. --slab-debug FZPU,{s.name})")
    return s


def _with_dmesg(k: SlubKernel, ex: Explanation, before: int) -> Explanation:
    ex.state["dmesg"] = k.dmesg[before:]
    return ex


def _debug_free(k: SlubKernel, size: int) -> Explanation:
    s = _debug_cache(k, size, "debug-free")
    objs = _kmalloc(k, size, 2, 0)
    n = len(k.dmesg)
    _, ex = _first(k, s, 0, _frees(k, objs[:1], 0), _has(("free_to_partial_list", "freed")), "free_to_partial_list")
    return _done(_with_dmesg(k, ex, n), "debug-free", [_km(size, 2, 0)])


def _debug_double_free(k: SlubKernel, size: int) -> Explanation:
    s = _debug_cache(k, size, "debug-double-free")
    objs = _kmalloc(k, size, 2, 0)
    k.kfree(objs[0], cpu=0)
    n = len(k.dmesg)
    _, ex = _first(k, s, 0, _frees(k, objs[:1], 0), _has(("free_to_partial_list", "refused")),
                   "free_debug_processing failing")
    return _done(_with_dmesg(k, ex, n), "debug-double-free", [_km(size, 2, 0), _kf(1, 0, "first", ptr=objs[0])])


def _debug_redzone(k: SlubKernel, size: int) -> Explanation:
    s = _debug_cache(k, size, "debug-redzone")
    if not s.flags & SLAB_RED_ZONE:
        raise ScenarioError("debug-redzone needs red zones: --slab-debug with Z")
    objs = _kmalloc(k, size, 1, 0)
    k.write(objs[0] + s.object_size, b"\x00")
    n = len(k.dmesg)
    _, ex = _first(k, s, 0, _frees(k, objs, 0), _has(("free_to_partial_list", "refused")), "redzone check")
    return _done(_with_dmesg(k, ex, n), "debug-redzone", [_km(size, 1, 0), {"do": "write", "addr":
                                                          objs[0] + s.object_size, "bytes": 1}])


def _s(name: str, en: str, zh: str, build: Callable[[SlubKernel, int], Explanation], **kw: Any) -> Scenario:
    return Scenario(name, {"en": en, "zh": zh}, build, **kw)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    _s("alloc-fastpath", "kmalloc from the CPU freelist without a lock (STATS alloc_fastpath)",
       "kmalloc 无锁地从 CPU freelist 取得对象 (STATS alloc_fastpath)", _alloc_fastpath),
    _s("alloc-new-slab", "kmalloc with no cpu slab and nothing partial: new_slab from the buddy allocator "
       "(STATS alloc_slab)", "kmalloc 时没有 cpu slab 也没有 partial slab：new_slab 从伙伴系统申请 (STATS alloc_slab)",
       _alloc_new_slab),
    _s("alloc-bypass", "kmalloc when the cpu slab is used up: it is dropped full (STATS deactivate_bypass)",
       "kmalloc 时 cpu slab 已用完：直接丢下这个满 slab (STATS deactivate_bypass)", _alloc_bypass),
    _s("alloc-refill", "kmalloc takes the objects another CPU freed into the cpu slab (STATS alloc_refill)",
       "kmalloc 取走别的 CPU 释放回 cpu slab 的对象 (STATS alloc_refill)", _alloc_refill, cpus=2, min_cpus=2),
    _s("alloc-cpu-partial", "kmalloc takes the CPU's per-CPU partial slab (STATS cpu_partial_alloc)",
       "kmalloc 取用本 CPU 的 per-CPU partial slab (STATS cpu_partial_alloc)", _alloc_cpu_partial),
    _s("alloc-node-partial", "kmalloc takes a slab off the node's partial list and moves more to the CPU "
       "(get_partial_node: STATS alloc_from_partial, cpu_partial_node)",
       "kmalloc 从节点 partial 链表取一个 slab，并把更多 slab 移到本 CPU (get_partial_node：STATS alloc_from_partial，"
       "cpu_partial_node)", _alloc_node_partial),
    _s("alloc-any-partial", "kmalloc on a node without partial slabs takes one of another node's "
       "(get_any_partial, remote_node_defrag_ratio)",
       "在没有 partial slab 的节点上 kmalloc，取用其他节点的 slab (get_any_partial，remote_node_defrag_ratio)",
       _alloc_any_partial, cpus=2, nodes=2, min_cpus=2, min_nodes=2),
    _s("alloc-order-fallback", "new_slab with the memory fragmented: oo's order fails, s->min's is used "
       "(STATS order_fallback)", "内存碎片化时 new_slab：oo 的 order 失败，改用 s->min 的 order (STATS order_fallback)",
       _alloc_order_fallback, size=4096),
    _s("alloc-node-mismatch", "kmalloc_node for another node than the cpu slab's: deactivate_slab, then a slab of "
       "that node (STATS alloc_node_mismatch)",
       "kmalloc_node 请求的节点与 cpu slab 不同：deactivate_slab，再取该节点的 slab (STATS alloc_node_mismatch)",
       _alloc_node_mismatch, cpus=2, nodes=2, min_cpus=2, min_nodes=2),
    _s("free-fastpath", "kfree into the CPU's cpu slab without a lock (STATS free_fastpath)",
       "kfree 的对象属于本 CPU 的 cpu slab，无锁放回 (STATS free_fastpath)", _free_fastpath),
    _s("free-frozen", "kfree on another CPU of an object of a cpu slab: onto the frozen slab's freelist "
       "(STATS free_frozen)", "在另一个 CPU 上 kfree 属于 cpu slab 的对象：放到冻结 slab 的 freelist (STATS "
                              "free_frozen)",
       _free_frozen, cpus=2, min_cpus=2),
    _s("free-to-cpu-partial", "kfree into a full slab: it goes to the CPU's partial list (put_cpu_partial, "
       "STATS cpu_partial_free)", "kfree 到一个满 slab：它进入本 CPU 的 partial 链表 (put_cpu_partial，"
       "STATS cpu_partial_free)", _free_to_cpu_partial),
    _s("free-cpu-partial-drain", "kfree into a full slab when the per-CPU partial list is full: the list is "
       "drained to the node (STATS cpu_partial_drain)",
       "per-CPU partial 链表已满时 kfree 到满 slab：先把链表交还节点 (STATS cpu_partial_drain)",
       _free_cpu_partial_drain),
    _s("free-discard", "kfree empties a slab while the node keeps min_partial partial slabs: discard_slab "
       "(STATS free_slab)", "kfree 使 slab 变空且节点已有 min_partial 个 partial slab：discard_slab (STATS free_slab)",
       _free_discard),
    _s("flush-cpu-slab", "the flush work on a CPU: deactivate_slab of its cpu slab, its partial slabs to the node",
       "CPU 上的 flush 工作：对 cpu slab 执行 deactivate_slab，partial slab 交还节点", _flush_cpu_slab),
    _s("deactivate-remote-frees", "deactivate_slab of a cpu slab that other CPUs freed into: to the tail of the "
       "node list (STATS deactivate_remote_frees)",
       "别的 CPU 向 cpu slab 释放过对象，deactivate_slab 把它放到节点链表尾 (STATS deactivate_remote_frees)",
       _deactivate_remote, cpus=2, min_cpus=2),
    _s("shrink", "kmem_cache_shrink: flush every CPU, free the empty partial slabs, fullest slabs first",
       "kmem_cache_shrink：flush 所有 CPU，释放空的 partial slab，最满的 slab 排到前面", _shrink),
    _s("bulk-alloc", "kmem_cache_alloc_bulk across the end of the cpu slab (one tid step, ___slab_alloc inside)",
       "kmem_cache_alloc_bulk 跨过 cpu slab 的末尾 (tid 只更新一次，中途调用 ___slab_alloc)", _bulk_alloc),
    _s("bulk-free", "kmem_cache_free_bulk of objects of two slabs: one detached freelist per slab",
       "kmem_cache_free_bulk 释放两个 slab 的对象：每个 slab 一条分离的 freelist", _bulk_free),
    _s("debug-free", "kfree into a debug cache (slab_debug=): free_to_partial_list under the node's lock, the "
       "object checked and poisoned", "kfree 到调试缓存 (slab_debug=)：持有节点锁的 free_to_partial_list，对象经检查后"
       "重新填充 poison", _debug_free, slab_debug="FZPU,kmalloc-64"),
    _s("debug-double-free", "kfree of an object already free in a debug cache: \"Object already free\", not freed",
       "在调试缓存中再次 kfree 已释放的对象：\"Object already free\"，不予释放", _debug_double_free,
       slab_debug="FZPU,kmalloc-64"),
    _s("debug-redzone", "kfree of an object whose right red zone was overwritten: \"Right Redzone overwritten\"",
       "kfree 一个右侧红区被改写的对象：\"Right Redzone overwritten\"", _debug_redzone,
       slab_debug="FZPU,kmalloc-64"),
)}


def run_scenario(name: str, k: SlubKernel, size: int | None = None) -> Explanation:
    """Build SLUB scenario ``name`` on ``k`` and explain its operation."""
    sc = SCENARIOS.get(name)
    if sc is None:
        raise ScenarioError(f"unknown SLUB scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    if k.nr_cpu_ids < sc.min_cpus:
        raise ScenarioError(f"scenario {name} needs --cpus {sc.min_cpus} or more (this machine has {k.nr_cpu_ids})")
    if k.nr_node_ids < sc.min_nodes:
        raise ScenarioError(f"scenario {name} needs --nodes {sc.min_nodes} or more (this machine has {k.nr_node_ids})")
    ex = sc.build(k, sc.size if size is None else size)
    ex.machine = machine_facts(k)
    return ex
