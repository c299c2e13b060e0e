# ruff: noqa: RUF001  (the Chinese summaries use full-width punctuation on purpose)
"""Explaining one allocator operation, and the built-in scenarios of ``kslab explain``.

:func:`explain_operation` is the reusable part: given a booted :class:`~kslab.mm.kernel.Kernel`
and a callable that performs *one* operation on it (a ``kfree``, a ``kmalloc``, ...), it snapshots
the state that decides the operation's path, switches the core's decision recorder on
(``k.explain``), runs the callable and returns an :class:`Explanation`.  The replay feature can
hand it any event of a trace; :mod:`kslab.report.narrate` renders the result.

A scenario builds the state for one branch of ``mm/slab.c`` *by running the kernel's own rules*
(allocations and frees on the model), then explains the first operation that takes the branch.
The scenario checks the branch was really taken and raises :class:`ScenarioError` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .mm.errors import KslabError
from .mm.explain import Explain, Step
from .mm.gfp import __GFP_COMP, GFP_KERNEL
from .mm.kernel import Kernel
from .mm.slab_def import KmemCache


class ScenarioError(KslabError):
    """A scenario cannot be set up on this machine (too few CPUs or nodes, an option that removes the branch)."""


@dataclass
class Explanation:
    """One explained operation: what was set up, the deciding state before it, and the recorded steps."""

    operation: dict[str, Any]
    state: dict[str, Any]
    steps: list[Step]
    result: Any = None
    scenario: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    setup: list[dict[str, Any]] = field(default_factory=list)

    def decisions(self) -> list[tuple[str, str]]:
        """The (function, decision) pairs in order: what tests assert on."""
        return [(s.func, s.key) for s in self.steps]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "machine": self.machine, "setup": self.setup, "state": self.state,
            "operation": self.operation, "result": self.result,
            "steps": [{"func": s.func, "key": s.key, "values": dict(s.values)} for s in self.steps],
        }


def explain_call(k: Kernel, fn: Callable[[], Any]) -> tuple[Any, list[Step]]:
    """Run ``fn`` with the decision recorder on; returns (its result, the steps).  The previous
    recorder (normally None) is restored even if ``fn`` raises."""
    saved = k.explain
    ex = Explain()
    k.explain = ex
    try:
        result = fn()
    finally:
        k.explain = saved
    return result, ex.steps


def machine_facts(k: Kernel) -> dict[str, Any]:
    c = k.config
    options = [name for name, on in (
        ("CONFIG_DEBUG_SLAB", c.CONFIG_DEBUG_SLAB), ("CONFIG_SLAB_FREELIST_HARDENED", c.CONFIG_SLAB_FREELIST_HARDENED),
        ("init_on_alloc", c.init_on_alloc), ("init_on_free", c.init_on_free), ("noaliencache", c.noaliencache),
        ("slab_nomerge", c.slab_nomerge), ("CONFIG_SLAB_FREELIST_RANDOM", c.CONFIG_SLAB_FREELIST_RANDOM)) if on]
    return {"cpus": c.cpus, "nodes": c.nr_nodes, "mem": c.mem, "numa": c.CONFIG_NUMA, "options": options}


def cache_state(k: Kernel, c: KmemCache, cpu: int, nodes: Iterable[int] = ()) -> dict[str, Any]:
    """The numbers that decide an alloc/free path: the CPU's array, the node's shared array, alien
    arrays, lists and counters.  ``nodes`` adds other nodes (e.g. the home node of an alien object)."""
    node = k.topo.cpu_to_node[cpu]
    ac = c.cpu_cache[cpu]
    st: dict[str, Any] = {
        "cache": c.name, "object_size": c.object_size, "size": c.size, "num": c.num, "order": c.gfporder,
        "placement": c.placement, "limit": c.limit, "batchcount": c.batchcount, "shared": c.shared,
        "cpu": cpu, "node": node, "ac_avail": len(ac.entry), "ac_limit": ac.limit, "ac_touched": ac.touched,
        "nodes": [],
    }
    for nid in [node, *[n for n in nodes if n != node]]:
        n = c.node[nid]
        if n is None:
            continue
        d: dict[str, Any] = {
            "node": nid, "shared_avail": None if n.shared is None else len(n.shared.entry),
            "shared_limit": None if n.shared is None else n.shared.limit,
            "free_objects": n.free_objects, "free_limit": n.free_limit, "total_slabs": n.total_slabs,
            "slabs_free": len(n.slabs_free), "slabs_partial": len(n.slabs_partial), "slabs_full": len(n.slabs_full),
            "alien": [],
        }
        if n.alien is not None:
            d["alien"] = [{"node": i, "avail": len(a.entry), "limit": a.limit}
                          for i, a in enumerate(n.alien) if a is not None]
        st["nodes"].append(d)
    return st


def explain_operation(k: Kernel, operation: dict[str, Any], fn: Callable[[], Any], cache: KmemCache | None = None,
                      cpu: int = 0, other_nodes: Iterable[int] = ()) -> Explanation:
    """Explain one operation: snapshot ``cache`` as seen from ``cpu``, then run ``fn`` recorded.

    :param operation: what is done, e.g. ``{"call": "kfree", "ptr": p, "cpu": 0}`` (shown in the header)
    :param fn: performs exactly that operation on ``k``
    """
    state = cache_state(k, cache, cpu, other_nodes) if cache is not None else {"cpu": cpu,
                                                                               "node": k.topo.cpu_to_node[cpu]}
    result, steps = explain_call(k, fn)
    return Explanation(operation=operation, state=state, steps=steps, result=result, machine=machine_facts(k))


# ---- scenarios -----------------------------------------------------------------------------------

Predicate = Callable[[set[tuple[str, str]]], bool]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: dict[str, str]
    build: Callable[[Kernel, int], Explanation]
    size: int = 64            # default kmalloc size (--size overrides)
    cpus: int = 1             # default CPUs when the user gave no --cpus
    nodes: int = 1            # default nodes when the user gave no --nodes
    min_cpus: int = 1
    min_nodes: int = 1
    freelist_random: bool = False  # needs CONFIG_SLAB_FREELIST_RANDOM (kslab explain turns it on)


def _cache(k: Kernel, size: int) -> KmemCache:
    c = k.kmalloc_slab(size, GFP_KERNEL)
    if c is None:
        raise ScenarioError(f"--size {size}: no kmalloc cache serves that size (1..4194304 bytes)")
    return c


def _kmalloc(k: Kernel, size: int, count: int, cpu: int) -> list[int]:
    objs: list[int] = []
    for _ in range(count):
        p = k.kmalloc(size, cpu=cpu)
        if not p:
            raise ScenarioError(f"kmalloc({size}) failed on CPU {cpu} after {len(objs)} objects: "
                                "the machine is too small")
        objs.append(p)
    return objs


def _first(k: Kernel, c: KmemCache, cpu: int, ops: Iterable[tuple[dict[str, Any], Callable[[], Any]]],
           wanted: Predicate, what: str, other_nodes: Iterable[int] = ()) -> tuple[int, Explanation]:
    """Run ``ops`` in order, each explained; return (how many ran before, the first whose steps satisfy ``wanted``)."""
    others = tuple(other_nodes)
    for i, (op, fn) in enumerate(ops):
        ex = explain_operation(k, op, fn, c, cpu, others)
        if wanted(set(ex.decisions())):
            return i, ex
    raise ScenarioError(f"the model never took the {what} branch in this setup (see 'kslab explain --list')")


def _frees(k: Kernel, objs: list[int], cpu: int) -> Iterable[tuple[dict[str, Any], Callable[[], Any]]]:
    for p in objs:
        yield {"call": "kfree", "ptr": p, "cpu": cpu}, (lambda p=p: k.kfree(p, cpu=cpu))  # type: ignore[misc]


def _allocs(k: Kernel, size: int, cpu: int, limit: int) -> Iterable[tuple[dict[str, Any], Callable[[], Any]]]:
    for _ in range(limit):
        yield {"call": "kmalloc", "size": size, "cpu": cpu}, (lambda: k.kmalloc(size, cpu=cpu))


def _finish(ex: Explanation, name: str, setup: list[dict[str, Any]]) -> Explanation:
    ex.scenario = name
    ex.setup = setup
    return ex


def _freehit(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    objs = _kmalloc(k, size, 3, 0)
    n, ex = _first(k, c, 0, _frees(k, objs, 0), lambda s: ("___cache_free", "freehit") in s, "FREEHIT")
    setup = [{"do": "kmalloc", "size": size, "count": len(objs), "cpu": 0}]
    if n:
        setup.append({"do": "kfree", "count": n, "cpu": 0})
    return _finish(ex, "freehit", setup)


def _flush_shared(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    n0 = c.node[k.topo.cpu_to_node[0]]
    if n0 is None or n0.shared is None:
        why = ("objects larger than a page never get one" if c.size > 4096
               else "a 1-CPU machine has sharedfactor 0" if k.nr_cpu_ids == 1 else "shared is 0 for this cache")
        raise ScenarioError(f"flush-shared needs a shared array on node 0, and {c.name} has none ({why}); "
                            "use --cpus 2 or more and --size 4096 or less")
    objs = _kmalloc(k, size, c.limit + 1, 0)
    n, ex = _first(k, c, 0, _frees(k, objs, 0), lambda s: ("cache_flusharray", "flush_shared") in s,
                   "cache_flusharray -> shared array")
    return _finish(ex, "flush-shared", [{"do": "kmalloc", "size": size, "count": len(objs), "cpu": 0},
                                        {"do": "kfree", "count": n, "cpu": 0}])


def _flush_free_block(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    n0 = c.node[k.topo.cpu_to_node[0]]
    assert n0 is not None
    shared = n0.shared.limit if n0.shared is not None else 0
    count = n0.free_limit + c.limit + shared + 2 * c.num + c.batchcount
    objs = _kmalloc(k, size, count, 0)

    def wanted(s: set[tuple[str, str]]) -> bool:
        return {("cache_flusharray", "flush_free_block"), ("free_block", "trim"), ("slab_destroy", "slab_destroy"),
                ("kmem_freepages", "free_pages")} <= s
    n, ex = _first(k, c, 0, _frees(k, objs, 0), wanted, "free_block trim")
    return _finish(ex, "flush-free-block", [{"do": "kmalloc", "size": size, "count": len(objs), "cpu": 0},
                                            {"do": "kfree", "count": n, "cpu": 0}])


def _remote_cpu(k: Kernel, name: str) -> tuple[int, int]:
    if k.nr_node_ids < 2:
        raise ScenarioError(f"{name} needs 2 NUMA nodes: use --nodes 2 (with --cpus 2 or more)")
    home = 1
    return k.config.topology[home][0], home


def _alien(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    cpu_b, home = _remote_cpu(k, "alien")
    objs = _kmalloc(k, size, 1, cpu_b)
    _, ex = _first(k, c, 0, _frees(k, objs, 0), lambda s: ("cache_free_alien", "alien") in s,
                   "cache_free_alien", [home])
    return _finish(ex, "alien", [{"do": "kmalloc", "size": size, "count": 1, "cpu": cpu_b, "node": home}])


def _alien_overflow(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    cpu_b, home = _remote_cpu(k, "alien-overflow")
    n0 = c.node[k.topo.cpu_to_node[0]]
    alien = n0.alien[home] if n0 is not None and n0.alien is not None else None
    if alien is None:
        raise ScenarioError("alien-overflow needs alien arrays: boot without --noaliencache")
    objs = _kmalloc(k, size, alien.limit + 2, cpu_b)
    n, ex = _first(k, c, 0, _frees(k, objs, 0), lambda s: ("__cache_free_alien", "alien_overflow") in s,
                   "alien overflow", [home])
    return _finish(ex, "alien-overflow", [{"do": "kmalloc", "size": size, "count": len(objs), "cpu": cpu_b,
                                           "node": home}, {"do": "kfree", "count": n, "cpu": 0}])


def _alloc_hit(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    objs = _kmalloc(k, size, 1, 0)
    k.kfree(objs[0], cpu=0)
    _, ex = _first(k, c, 0, _allocs(k, size, 0, 1), lambda s: ("____cache_alloc", "alloc_hit") in s, "alloc hit")
    return _finish(ex, "alloc-hit", [{"do": "kmalloc", "size": size, "count": 1, "cpu": 0},
                                     {"do": "kfree", "count": 1, "cpu": 0, "ptr": objs[0]}])


def _alloc_refill(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    n, ex = _first(k, c, 0, _allocs(k, size, 0, 4 * (c.limit + c.num) + 64),
                   lambda s: ("cache_alloc_refill", "refill") in s and ("cache_alloc_refill", "must_grow") not in s,
                   "cache_alloc_refill without growing")
    return _finish(ex, "alloc-refill", [{"do": "kmalloc", "size": size, "count": n, "cpu": 0}] if n else [])


def _alloc_grow(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    n, ex = _first(k, c, 0, _allocs(k, size, 0, 4 * (c.limit + c.num) + 64),
                   lambda s: {("cache_alloc_refill", "must_grow"), ("cache_grow_begin", "grow")} <= s,
                   "cache_grow_begin")
    return _finish(ex, "alloc-grow", [{"do": "kmalloc", "size": size, "count": n, "cpu": 0}] if n else [])


def _grow_shuffle(k: Kernel, size: int) -> Explanation:
    c = _cache(k, size)
    n, ex = _first(k, c, 0, _allocs(k, size, 0, 4 * (c.limit + c.num) + 64),
                   lambda s: ("shuffle_freelist", "precomputed") in s, "shuffle_freelist with random_seq")
    return _finish(ex, "grow-shuffle", [{"do": "kmalloc", "size": size, "count": n, "cpu": 0}] if n else [])


def _not_slab(k: Kernel, size: int) -> Explanation:
    page = k.page_alloc.alloc_pages_node(k.topo.cpu_to_node[0], GFP_KERNEL | __GFP_COMP, 1, 0)
    if page is None:
        raise ScenarioError("alloc_pages(order 1) failed: the machine is too small")
    ptr = page.address + 4096 + 0x40  # inside the tail page of a compound page
    ex = explain_operation(k, {"call": "kfree", "ptr": ptr, "cpu": 0}, lambda: k.kfree(ptr, cpu=0), None, 0)
    if ("virt_to_cache", "not_slab") not in set(ex.decisions()):
        raise ScenarioError("the model did not reject the non-slab pointer")
    return _finish(ex, "not-slab", [{"do": "alloc_pages", "order": 1, "pfn": page.pfn, "node": page.nid,
                                     "gfp": "GFP_KERNEL|__GFP_COMP"}])


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("freehit", {"en": "kfree into a per-CPU array that is not full (STATS freehit)",
                         "zh": "kfree 时 per-CPU 数组未满，对象直接放入 (STATS freehit)"}, _freehit),
    Scenario("flush-shared", {"en": "kfree into a full per-CPU array; the oldest batch moves to the node's shared "
                                    "array",
                              "zh": "kfree 时 per-CPU 数组已满，最旧的一批对象转移到节点的 shared 数组"},
             _flush_shared, cpus=2, min_cpus=2),
    Scenario("flush-free-block", {"en": "kfree into a full per-CPU array, no room in a shared array: free_block "
                                        "returns objects to their slabs and an empty slab goes back to the buddy "
                                        "allocator (free_objects > free_limit)",
                                  "zh": "kfree 时 per-CPU 数组已满且 shared 数组没有空间：free_block 把对象还给"
                                        "所属 slab，free_objects > free_limit 时空闲 slab 的页还给伙伴系统"},
             _flush_free_block, size=8192),
    Scenario("alien", {"en": "kfree on node 0 of an object from node 1: staged in node 0's alien array for node 1",
                       "zh": "在节点 0 上 kfree 一个属于节点 1 的对象：暂存到节点 0 为节点 1 准备的 alien 数组"},
             _alien, cpus=2, nodes=2, min_cpus=2, min_nodes=2),
    Scenario("alien-overflow", {"en": "the alien array is full: __drain_alien_cache empties it into the home node "
                                      "first",
                                "zh": "alien 数组已满：先由 __drain_alien_cache 把它清空还给对象所属节点"},
             _alien_overflow, cpus=2, nodes=2, min_cpus=2, min_nodes=2),
    Scenario("alloc-hit", {"en": "kmalloc served from the per-CPU array (STATS allochit)",
                           "zh": "kmalloc 直接从 per-CPU 数组取得对象 (STATS allochit)"}, _alloc_hit),
    Scenario("alloc-refill", {"en": "kmalloc with an empty per-CPU array: cache_alloc_refill from the shared array "
                                    "or the node's slabs",
                              "zh": "kmalloc 时 per-CPU 数组为空：cache_alloc_refill 从 shared 数组或节点的 slab 补充"},
             _alloc_refill),
    Scenario("alloc-grow", {"en": "kmalloc with nothing free on the node: cache_grow_begin gets a new slab from the "
                                  "buddy allocator",
                            "zh": "kmalloc 时节点上没有空闲对象：cache_grow_begin 从伙伴系统申请新 slab"},
             _alloc_grow),
    Scenario("grow-shuffle", {"en": "CONFIG_SLAB_FREELIST_RANDOM: a new slab's freelist is the cache's random_seq "
                                    "read from a random start (shuffle_freelist)",
                              "zh": "CONFIG_SLAB_FREELIST_RANDOM：新 slab 的 freelist 是从随机起点读取的该 cache "
                                    "的 random_seq (shuffle_freelist)"},
             _grow_shuffle, freelist_random=True),
    Scenario("not-slab", {"en": "kfree of a pointer into a page that is not a slab (a compound page from "
                                "alloc_pages): warned once and ignored",
                          "zh": "kfree 一个不在 slab 页中的指针 (alloc_pages 得到的组合页)：只警告一次并忽略"},
             _not_slab),
)}


def run_scenario(name: str, k: Kernel, size: int | None = None) -> Explanation:
    """Build scenario ``name`` on the booted machine ``k`` and explain its operation."""
    try:
        sc = SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}") from None
    if k.nr_cpu_ids < sc.min_cpus:
        raise ScenarioError(f"scenario {name} needs --cpus {sc.min_cpus} or more (this machine has {k.nr_cpu_ids})")
    if k.nr_node_ids < sc.min_nodes:
        raise ScenarioError(f"scenario {name} needs --nodes {sc.min_nodes} or more (this machine has {k.nr_node_ids})")
    if sc.freelist_random and not k.config.CONFIG_SLAB_FREELIST_RANDOM:
        raise ScenarioError(f"scenario {name} needs --freelist-random")
    ex = sc.build(k, sc.size if size is None else size)
    ex.machine = machine_facts(k)
    return ex
