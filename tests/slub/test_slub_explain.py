"""SLUB's narration (kslab explain --allocator slub): the recorded steps are the listed ones, each has an English
and a Chinese template that fits its values, the call graph places them, each scenario takes its branch with
6.12's numbers, and recording changes nothing in the model."""

from __future__ import annotations

import random

import pytest
from slowhelp import allocator, cache

from kslab.mm.config import MachineConfig
from kslab.mm.explain import Explain, Step
from kslab.mm.slub.explain import SLUB_STEPS
from kslab.mm.slub.flags import SLAB_TYPESAFE_BY_RCU
from kslab.mm.slub.geometry import oo_objects, oo_order
from kslab.mm.slub.machine import SlubKernel
from kslab.mm.slub.partial import rcu_barrier
from kslab.mm.slub.slab import StatItem
from kslab.report.callgraph_slub import CALLS
from kslab.report.narrate import SLUB, call_path, generic, layout, narrate, render_step
from kslab.report.narrate_slub import render_explanation
from kslab.report.narrate_slub_en import SLUB_EN
from kslab.report.narrate_slub_zh import SLUB_ZH
from kslab.scenarios import ScenarioError
from kslab.scenarios_slub import SCENARIOS, run_scenario


def machine(cpus: int = 1, nodes: int = 1, mem: str = "2G", debug: str | None = None) -> SlubKernel:
    cmdline = "" if debug is None else f"slab_debug={debug}"
    return SlubKernel(MachineConfig.build(cpus=cpus, nodes=nodes, mem=mem), cmdline=cmdline)


def scenario(name: str, size: int | None = None) -> tuple[SlubKernel, object]:
    sc = SCENARIOS[name]
    k = machine(max(sc.cpus, sc.nodes), sc.nodes, debug=sc.slab_debug)
    return k, run_scenario(name, k, size)


def stat(k: SlubKernel, name: str, item: StatItem) -> int:
    s = k.find_cache(name)
    assert s is not None
    return sum(c.stat[item] for c in s.cpu_slab)


# ---- the listed steps and their templates ----------------------------------------------------------

def test_every_listed_step_has_an_english_and_a_chinese_template():
    assert len(SLUB_STEPS) > 50
    assert SLUB_STEPS == SLUB_EN.keys() == SLUB_ZH.keys()


def test_every_recorded_function_is_in_slubs_call_graph():
    called = {g for gs in CALLS.values() for g in gs}
    for func, _ in SLUB_STEPS:
        assert func in CALLS or func in called, f"{func} is not in callgraph_slub.CALLS"


def test_the_call_graph_is_slubs_not_slabs():
    assert call_path("kfree", "__slab_free", SLUB) == ("slab_free", "do_slab_free", "__slab_free")
    assert call_path("kfree", "__slab_free") is None  # SLAB's graph has no __slab_free
    assert call_path("kfree", "___cache_free", SLUB) is None
    assert call_path("slab_alloc_node", "allocate_slab", SLUB) == (
        "__slab_alloc_node", "__slab_alloc", "___slab_alloc", "new_slab", "allocate_slab")


def _workload(ex: Explain) -> None:
    """A random mix on 2 CPUs and 2 nodes with the recorder on: kmalloc/kfree of several sizes on both CPUs
    (frees on the other CPU too), kmalloc_node, bulk calls, flushes, shrinks, an RCU cache, kmalloc(0) and
    large kmallocs, and get_cycles above remote_node_defrag_ratio now and then."""
    k = machine(2, 2)
    k.explain = ex
    rng = random.Random(5)
    cycles = [0]
    k.a.mm.get_cycles = lambda: cycles[0]
    rcu = k.kmem_cache_create("rcu-test", 200, 0, SLAB_TYPESAFE_BY_RCU)
    assert rcu is not None
    live: list[int] = []
    live_rcu: list[int] = []
    for i in range(6000):
        r = rng.random()
        cpu = rng.randrange(2)
        cycles[0] = rng.choice((0, 999, 1010))
        if r < 0.45:
            size = rng.choice((64, 192, 1024, 4096))
            p = k.kmalloc_node(size, node=rng.randrange(2), cpu=cpu) if rng.random() < 0.1 else k.kmalloc(size, cpu=cpu)
            live.append(p)
        elif r < 0.85 and live:
            k.kfree(live.pop(rng.randrange(len(live))), cpu=cpu)
        elif r < 0.88:
            live_rcu.append(k.kmem_cache_alloc(rcu, cpu=cpu))
        elif r < 0.91 and live_rcu:
            k.kmem_cache_free(rcu, live_rcu.pop(rng.randrange(len(live_rcu))), cpu=cpu)
        elif r < 0.93:
            s = k.find_cache("kmalloc-192")
            assert s is not None
            objs = k.kmem_cache_alloc_bulk(s, rng.randrange(1, 40), cpu=cpu)
            rng.shuffle(objs)
            k.kmem_cache_free_bulk(s, objs, cpu=rng.randrange(2))
        elif r < 0.95:
            s = k.find_cache(rng.choice(("kmalloc-64", "kmalloc-1k", "rcu-test")))
            assert s is not None
            k.a.flush_cpu_slab(s, cpu)
        elif r < 0.96:
            s = k.find_cache(rng.choice(("kmalloc-64", "kmalloc-4k")))
            assert s is not None
            k.kmem_cache_shrink(s, cpu)
        elif r < 0.97:
            big = k.kmalloc(rng.choice((0, 16384, 40000)), cpu=cpu)
            k.kfree(big, cpu=cpu)
        if i % 1000 == 999:
            rcu_barrier(k.a.mm)
    k.kfree(0, cpu=0)
    k.check()


def _out_of_memory(ex: Explain) -> None:
    """A small machine run out of memory, on one node and then for node 1 of two."""
    k = machine(1, 1, "64M")
    k.explain = None
    s = k.find_cache("kmalloc-8k")
    assert s is not None
    while k.kmalloc(8192, cpu=0):
        pass
    k.explain = ex
    assert not k.kmalloc(8192, cpu=0)
    assert not k.kmem_cache_alloc_bulk(s, 4 * oo_objects(s.oo), cpu=0)
    k2 = machine(2, 2, "128M")
    while k2.kmalloc_node(8192, node=1, cpu=1):
        pass
    k2.explain = ex
    k2.kmalloc_node(8192, node=1, cpu=1)


def _no_cpu_partial(ex: Explain) -> None:
    """CONFIG_SLUB_CPU_PARTIAL off: a full slab's first free puts it on the node's partial list."""
    a = allocator(CONFIG_SLUB_CPU_PARTIAL=False)
    a.mm.explain = ex
    s = cache(a, "kmalloc-64")
    per = oo_objects(s.oo)
    objs = [a.kmem_cache_alloc(s, 0) for _ in range(2 * per)]
    a.kmem_cache_free(s, objs[0], 0)


def _empty_slabs(ex: Explain) -> None:
    """An empty cpu slab deactivated while its node keeps min_partial partial slabs (discarded), and an empty slab
    of a SLAB_TYPESAFE_BY_RCU cache shrunk away (freed after a grace period)."""
    k = machine(2, 1)
    s = k.find_cache("kmalloc-64")
    assert s is not None
    per = oo_objects(s.oo)
    k.kfree(k.kmalloc(64, cpu=0), cpu=0)
    objs = [k.kmalloc(64, cpu=1) for _ in range(per * (s.min_partial + 2))]
    for p in objs[::per]:
        k.kfree(p, cpu=1)
    k.a.flush_cpu_slab(s, 1)
    k.explain = ex
    k.a.flush_cpu_slab(s, 0)
    rcu = k.kmem_cache_create("rcu-empty", 200, 0, SLAB_TYPESAFE_BY_RCU)
    assert rcu is not None
    per = oo_objects(rcu.oo)
    objs = [k.kmem_cache_alloc(rcu, cpu=0) for _ in range(per + 1)]
    for p in objs[:per]:
        k.kmem_cache_free(rcu, p, cpu=0)
    k.a.flush_cpu_slab(rcu, 0)
    k.kmem_cache_shrink(rcu, 0)
    rcu_barrier(k.a.mm)
    k.check()


def _debug_caches(ex: Explain) -> None:
    """A debug cache (slab_debug=FZPU): allocations from new slabs and from the node's partial slabs, frees."""
    k = machine(debug="FZPU,kmalloc-64")
    k.explain = ex
    objs = [k.kmalloc(64) for _ in range(40)]
    for p in objs[::3]:
        k.kfree(p)
    objs = [k.kmalloc(48) for _ in range(10)]
    k.check()


def _recorded() -> list[Step]:
    ex = Explain(limit=10_000_000)
    _debug_caches(ex)
    _workload(ex)
    _out_of_memory(ex)
    _no_cpu_partial(ex)
    _empty_slabs(ex)
    steps = list(ex.steps)
    for name in SCENARIOS:
        steps += scenario(name)[1].steps  # type: ignore[attr-defined]
    return steps


STEPS = _recorded()

# a branch the model never reaches: the CPU freelist refilled between the fast path's miss and ___slab_alloc
# (the kernel's preemption race)
SAMPLES: dict[tuple[str, str], dict] = {
    ("___slab_alloc", "cpu_freelist"): {"cache": "c", "pfn": 0x1000, "obj": 0xFFFF888001000040},
}


def test_the_paths_record_only_listed_steps_and_reach_every_one():
    seen = {(s.func, s.key) for s in STEPS}
    assert seen <= SLUB_STEPS, f"not listed in SLUB_STEPS: {sorted(seen - SLUB_STEPS)}"
    missing = SLUB_STEPS - seen - SAMPLES.keys()
    assert not missing, f"no workload records {sorted(missing)}: extend the workloads or SAMPLES"


def test_templates_fit_the_values_the_paths_record():
    """A template that does not fit its step's values falls back to the generic line: catch that here."""
    steps = STEPS + [Step(f, k, v) for (f, k), v in SAMPLES.items()]
    done: set[tuple[str, str, tuple[str, ...]]] = set()
    for s in steps:
        shape = (s.func, s.key, tuple(sorted(k for k, v in s.values.items() if not v)))
        if shape in done:
            continue
        done.add(shape)
        for lang in ("en", "zh"):
            text = render_step(s.func, s.key, s.values, lang, SLUB)
            assert text != generic(s.func, s.key, s.values), f"{lang} {s.func}/{s.key} does not fit {s.values}"
            assert "{" not in text, text


def test_recording_changes_nothing():
    def run(record: bool) -> dict:
        k = machine(2, 2)
        if record:
            k.explain = Explain()
        rng = random.Random(11)
        live: list[int] = []
        for _ in range(3000):
            cpu = rng.randrange(2)
            if rng.random() < 0.55 or not live:
                live.append(k.kmalloc(rng.choice((32, 512, 2048)), cpu=cpu))
            else:
                k.kfree(live.pop(rng.randrange(len(live))), cpu=cpu)
        s = k.find_cache("kmalloc-512")
        assert s is not None
        k.kmem_cache_shrink(s, 0)
        return {"snap": k.snapshot(), "slabinfo": k.slabinfo(), "live": live}

    assert run(True) == run(False)


# ---- the scenarios take their branches with 6.12's numbers --------------------------------------------

@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_narrates_in_both_languages(name):
    _, ex = scenario(name)
    for lang in ("en", "zh"):
        text = render_explanation(ex, lang)  # type: ignore[arg-type]
        assert "operation" in text or "操作" in text
        assert all(ln.func for ln in layout(ex.steps, SLUB))  # type: ignore[attr-defined]


def _steps(ex: object, func: str, key: str) -> list[Step]:
    return [s for s in ex.steps if (s.func, s.key) == (func, key)]  # type: ignore[attr-defined]


def test_fastpaths_count_as_6_12_does():
    k, ex = scenario("alloc-fastpath")
    (fast,) = _steps(ex, "__slab_alloc_node", "fastpath")
    assert fast.values["tid"] == 2 * 64  # init_tid(0) + two next_tid steps of TID_STEP
    assert stat(k, "kmalloc-64", StatItem.ALLOC_FASTPATH) == 1
    k, ex = scenario("free-fastpath")
    assert stat(k, "kmalloc-64", StatItem.FREE_FASTPATH) == 1
    assert not _steps(ex, "__slab_free", "frozen")


def test_node_partial_moves_slabs_until_past_half_of_cpu_partial_slabs():
    k, ex = scenario("alloc-node-partial", 64)
    s = k.find_cache("kmalloc-64")
    assert s is not None
    assert len(_steps(ex, "get_partial_node", "take")) == 1
    moved = _steps(ex, "get_partial_node", "to_cpu_partial")
    assert len(moved) <= s.cpu_partial_slabs // 2 + 1
    assert stat(k, "kmalloc-64", StatItem.CPU_PARTIAL_NODE) == len(moved)


def test_any_partial_skips_nodes_at_or_below_min_partial():
    k, ex = scenario("alloc-any-partial")
    s = k.find_cache("kmalloc-64")
    assert s is not None
    for st in _steps(ex, "get_any_partial", "skip"):
        assert st.values["node"] == 0 and st.values["nr_partial"] <= s.min_partial
    (tried,) = _steps(ex, "get_any_partial", "try")
    assert tried.values["node"] == 1 and tried.values["nr_partial"] > s.min_partial
    assert tried.values["cycles"] <= s.remote_node_defrag_ratio


def test_order_fallback_uses_s_min():
    k, ex = scenario("alloc-order-fallback")
    s = k.find_cache("kmalloc-4k")
    assert s is not None
    (fb,) = _steps(ex, "allocate_slab", "fallback")
    assert fb.values["oo_order"] == oo_order(s.oo) and fb.values["order"] == oo_order(s.min)
    assert fb.values["objects"] == oo_objects(s.min)
    assert stat(k, "kmalloc-4k", StatItem.ORDER_FALLBACK) == 1


def test_drain_when_the_list_holds_cpu_partial_slabs():
    k, ex = scenario("free-cpu-partial-drain")
    s = k.find_cache("kmalloc-64")
    assert s is not None
    (dr,) = _steps(ex, "put_cpu_partial", "drain")
    assert dr.values["drained"] == s.cpu_partial_slabs
    assert len(_steps(ex, "__put_partials", "to_node")) == s.cpu_partial_slabs
    assert stat(k, "kmalloc-64", StatItem.CPU_PARTIAL_DRAIN) == 1


def test_discard_only_beyond_min_partial():
    k, ex = scenario("free-discard")
    s = k.find_cache("kmalloc-64")
    assert s is not None
    (d,) = _steps(ex, "__slab_free", "discard")
    assert d.values["nr_partial"] >= s.min_partial and d.values["inuse"] == 0 and d.values["prior"]
    assert _steps(ex, "free_slab", "now")
    assert stat(k, "kmalloc-64", StatItem.FREE_REMOVE_PARTIAL) == 1


def test_deactivate_with_remote_frees_goes_to_the_tail():
    k, ex = scenario("deactivate-remote-frees")
    (d,) = _steps(ex, "deactivate_slab", "to_tail")
    assert d.values["remote"] and d.values["returned"] == 60 and d.values["inuse"] == 2
    assert stat(k, "kmalloc-64", StatItem.DEACTIVATE_REMOTE_FREES) == 1


def test_bulk_alloc_counts_fast_objects_and_steps_tid_once():
    _, ex = scenario("bulk-alloc")
    (done,) = _steps(ex, "__kmem_cache_alloc_bulk", "done")
    slow = _steps(ex, "__kmem_cache_alloc_bulk", "slowpath")
    assert done.values["fast"] == done.values["size"] - len(slow)
    assert [s.values["i"] for s in slow] == [2]


def test_bulk_free_builds_one_freelist_per_slab():
    _, ex = scenario("bulk-free")
    chains = _steps(ex, "build_detached_freelist", "chain")
    assert [c.values["cnt"] for c in chains] == [3, 3]
    assert [(s.key) for s in ex.steps if s.func == "do_slab_free"] == ["fastpath", "slowpath"]  # type: ignore


def test_shrink_discards_empty_and_promotes_the_fullest():
    _, ex = scenario("shrink")
    (node,) = _steps(ex, "__kmem_cache_do_shrink", "node")
    assert node.values["discarded"] == 1 and node.values["promoted"] == 1


def test_scenarios_refuse_machines_without_their_branch():
    k = machine(1, 1)
    with pytest.raises(ScenarioError, match="--cpus 2"):
        run_scenario("free-frozen", k)
    with pytest.raises(ScenarioError, match="--nodes 2"):
        run_scenario("alloc-any-partial", machine(2, 1))
    with pytest.raises(ScenarioError, match="same order"):
        run_scenario("alloc-order-fallback", machine(), 64)
    with pytest.raises(ScenarioError, match="no kmalloc cache"):
        run_scenario("alloc-fastpath", machine(), 100000)
    with pytest.raises(ScenarioError, match="--slab-debug"):
        run_scenario("debug-free", machine())


def test_debug_free_refuses_a_double_free_and_shows_the_report():
    _, ex = scenario("debug-double-free")
    assert _steps(ex, "free_to_partial_list", "refused")
    log = ex.state["dmesg"]  # type: ignore[attr-defined]
    assert "BUG kmalloc-64 (Not tainted): Object already free" in log and log[-1].endswith("not freed")
    k, ex = scenario("debug-free")
    (freed,) = _steps(ex, "free_to_partial_list", "freed")
    assert freed.values["nr"] == 1 and freed.values["inuse"] == 1 and not freed.values["discard"]
    assert stat(k, "kmalloc-64", StatItem.FREE_FASTPATH) == 0


def test_narrate_indents_by_slubs_call_chain():
    steps = [Step("kfree", "slab", {}), Step("__slab_free", "frozen", {})]
    text = narrate(steps, "en", allocator=SLUB)
    lines = text.splitlines()
    assert lines[1].startswith("  slab_free: ") and lines[2].startswith("    do_slab_free: calls __slab_free")
    assert lines[3].startswith("      __slab_free: ")
