"""kslab.report.narrate: templates for every recorded decision, call-depth layout, and the scenarios'
branches (each scenario must really take the branch it is named after, with the kernel's numbers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import goldens
from kslab.mm.config import MachineConfig
from kslab.mm.explain import Explain, Step
from kslab.mm.gfp import GFP_KERNEL
from kslab.mm.kernel import Kernel
from kslab.report.narrate import (
    CALLS,
    EN,
    TEMPLATES,
    ZH,
    call_path,
    generic,
    layout,
    narrate,
    render_explanation,
    render_step,
    step_depths,
)
from kslab.scenarios import SCENARIOS, ScenarioError, run_scenario

ROOT = Path(__file__).resolve().parents[2]
MM = ROOT / "src" / "kslab" / "mm"
GOLDEN = ROOT / "tests" / "golden" / "explain"
STEP_CALL = re.compile(r"\.step\(\s*\"([^\"]+)\"\s*,\s*\"([^\"]+)\"")


def check_golden(name: str, text: str) -> None:
    goldens.check_golden(GOLDEN, name, text)


def core_step_keys() -> set[tuple[str, str]]:
    """The steps SLAB's core records (SLUB's, in kslab/mm/slub, have their own templates: test_narrate_slub)."""
    keys: set[tuple[str, str]] = set()
    for f in MM.rglob("*.py"):
        if "slub" not in f.relative_to(MM).parts:
            keys |= set(STEP_CALL.findall(f.read_text(encoding="utf-8")))
    return keys


# ---- templates ---------------------------------------------------------------------------------

def test_every_step_call_in_the_core_names_its_function_and_key_literally():
    # SLUB's paths (kslab/mm/slub) list their steps in mm/slub/explain.py:SLUB_STEPS instead (test_narrate_slub)
    for f in MM.rglob("*.py"):
        if "slub" in f.relative_to(MM).parts:
            continue
        text = re.sub(r"#.*", "", f.read_text(encoding="utf-8"))  # comments may mention .step(func, key)
        calls = len(re.findall(r"\.step\(", text))
        assert calls == len(STEP_CALL.findall(text)), f"{f}: a step() call without literal function and key"


def test_every_core_key_has_an_english_and_a_chinese_template():
    keys = core_step_keys()
    assert len(keys) > 40
    assert not keys - EN.keys(), f"no English template for {sorted(keys - EN.keys())}"
    assert not keys - ZH.keys(), f"no Chinese template for {sorted(keys - ZH.keys())}"
    assert EN.keys() == ZH.keys()


def test_every_recorded_function_is_in_the_call_graph():
    called = {g for gs in CALLS.values() for g in gs}
    for func, _ in core_step_keys():
        assert func in CALLS or func in called, f"{func} is not in CALLS: its depth cannot be derived"


def test_unknown_key_renders_generically():
    s = render_step("cache_frobnicate", "weird", {"obj": 0xFFFF888000001000, "nr": 3, "ok": True}, "en")
    assert s == "cache_frobnicate: weird obj=0xffff888000001000, nr=3, ok=True"
    assert render_step("cache_frobnicate", "weird", {}, "zh") == "cache_frobnicate: weird"
    # a known key with values missing (an older/newer core) falls back instead of raising
    assert render_step("___cache_free", "freehit", {"avail": 3}, "zh") == "___cache_free: freehit avail=3"


def test_chinese_keeps_kernel_identifiers_and_uses_chinese():
    v = {"cache": "kmalloc-64", "obj": 0xFFFF888001005000, "avail": 120, "limit": 120}
    s = render_step("___cache_free", "freemiss", v, "zh")
    assert s.startswith("___cache_free: ac->avail 120 == ac->limit 120")
    assert "cache_flusharray" in s and "已满" in s
    for (func, key), t in ZH.items():
        if isinstance(t, str):
            assert re.search(r"[\u4e00-\u9fff]", t), f"{func}/{key}: the Chinese template has no Chinese"


def test_bad_language():
    with pytest.raises(ValueError, match="unknown language"):
        narrate([], "fr")
    assert set(TEMPLATES) == {"en", "zh"}


# ---- layout --------------------------------------------------------------------------------------

def test_call_path():
    assert call_path("kfree", "compound_head") == ("virt_to_cache", "virt_to_head_page", "compound_head")
    assert call_path("slab_alloc", "____cache_alloc") == ("__do_cache_alloc", "____cache_alloc")
    assert call_path("free_block", "free_block") == ()
    assert call_path("kmem_freepages", "free_block") is None
    # re-entry (the off-slab freelist) is a direct call only, never a pass-through
    assert call_path("slab_destroy", "kmem_cache_free") == ("kmem_cache_free",)
    assert call_path("slab_destroy", "__free_one") is None


def test_depths_follow_the_call_chain():
    steps = [Step("kfree", "entry", {"obj": 0x1000, "cpu": 0, "node": 0}),
             Step("compound_head", "head", {"obj": 0x1000, "pfn": 1, "word": 0, "order": 0}),
             Step("virt_to_cache", "slab_page", {"obj": 0x1000, "pfn": 1, "order": 0, "cache": "c"}),
             Step("kfree", "enter", {"cache": "c", "obj": 0x1000}),
             Step("___cache_free", "freemiss", {"cache": "c", "obj": 0x1000, "avail": 8, "limit": 8}),
             Step("cache_flusharray", "no_shared", {"cache": "c"}),
             Step("free_block", "entry", {"cache": "c", "nr": 1, "node": 0, "free_objects": 1}),
             Step("slab_put_obj", "put", {}),
             Step("free_block", "to_free", {}),
             Step("slabs_destroy", "destroy", {"cache": "c", "nr": 1, "pfns": [5]}),
             Step("slab_destroy", "slab_destroy", {}),
             Step("kmem_freepages", "free_pages", {}),
             Step("__free_one", "push", {})]
    assert step_depths(steps) == [0, 3, 1, 0, 2, 3, 4, 5, 4, 4, 5, 6, 3]
    synthetic = [(ln.func, ln.depth) for ln in layout(steps) if ln.synthetic]
    assert synthetic == [("virt_to_cache", 1), ("virt_to_head_page", 2), ("__cache_free", 1)]


def test_narrate_indents_by_depth_and_never_drops_a_step():
    steps = [Step("kfree", "entry", {"obj": 0xFFFF888001000000, "cpu": 0, "node": 0}),
             Step("mystery", "thing", {"x": 1})]
    text = narrate(steps)
    lines = text.splitlines()
    assert lines[0].startswith("kfree: kfree(0xffff888001000000) on CPU 0")
    assert lines[1] == "mystery: thing x=1"  # unknown function: a new root


# ---- scenarios: each takes its branch with the kernel's numbers -------------------------------

def boot(cpus: int = 1, nodes: int = 1, freelist_random: bool = False) -> Kernel:
    return Kernel(MachineConfig.build(cpus=cpus, nodes=nodes, CONFIG_SLAB_FREELIST_RANDOM=freelist_random))


def scenario(name: str, size: int | None = None, cpus: int | None = None, nodes: int | None = None):
    sc = SCENARIOS[name]
    k = boot(cpus or max(sc.cpus, nodes or sc.nodes), nodes or sc.nodes, sc.freelist_random)
    ex = run_scenario(name, k, size)
    k.check()
    return k, ex


def first(ex, func, key):
    return next(s.values for s in ex.steps if (s.func, s.key) == (func, key))


def test_freehit():
    _, ex = scenario("freehit")
    keys = ex.decisions()
    assert ("___cache_free", "freehit") in keys and keys[-1] == ("__free_one", "push")
    assert not any(f == "cache_flusharray" for f, _ in keys)
    hit = first(ex, "___cache_free", "freehit")
    assert hit["avail"] < hit["limit"] and hit["avail"] == ex.state["ac_avail"]
    assert first(ex, "__free_one", "push")["avail"] == hit["avail"] + 1


def test_flush_shared_moves_min_batch_room_and_nothing_to_slabs():
    _, ex = scenario("flush-shared")
    keys = ex.decisions()
    miss = first(ex, "___cache_free", "freemiss")
    assert miss["avail"] == miss["limit"] == ex.state["ac_limit"]
    fl = first(ex, "cache_flusharray", "flush_shared")
    node = ex.state["nodes"][0]
    assert fl["room"] == node["shared_limit"] - node["shared_avail"]
    assert fl["nr"] == min(ex.state["batchcount"], fl["room"])
    assert not any(f == "free_block" for f, _ in keys)
    assert first(ex, "cache_flusharray", "slide")["avail"] == miss["limit"] - fl["nr"]
    assert first(ex, "__free_one", "push")["avail"] == miss["limit"] - fl["nr"] + 1  # pushed after the flush
    assert keys.index(("cache_flusharray", "flush_shared")) < keys.index(("__free_one", "push"))


@pytest.mark.parametrize(("size", "cpus"), [(None, None), (64, 1), (64, 2)])
def test_flush_free_block_trims_and_returns_pages(size, cpus):
    k, ex = scenario("flush-free-block", size, cpus)
    keys = ex.decisions()
    for want in [("___cache_free", "freemiss"), ("cache_flusharray", "flush_free_block"), ("free_block", "entry"),
                 ("slab_put_obj", "put"), ("free_block", "trim"), ("slabs_destroy", "destroy"),
                 ("slab_destroy", "slab_destroy"), ("kmem_freepages", "free_pages")]:
        assert want in keys, want
    node = ex.state["nodes"][0]
    if node["shared_avail"] is None:
        assert ("cache_flusharray", "no_shared") in keys
    else:
        assert ("cache_flusharray", "shared_full") in keys and node["shared_avail"] == node["shared_limit"]
    fb = first(ex, "free_block", "entry")
    assert fb["nr"] == ex.state["batchcount"]
    assert fb["free_objects"] == node["free_objects"] + fb["nr"]
    trims = [s.values for s in ex.steps if (s.func, s.key) == ("free_block", "trim")]
    for t in trims:
        assert t["free_objects"] > t["free_limit"] == node["free_limit"]
    assert trims[-1]["free_objects"] - ex.state["num"] <= node["free_limit"]  # the loop stops at the limit
    destroyed = [s.values["pfn"] for s in ex.steps if s.func == "kmem_freepages"]
    assert destroyed == [t["pfn"] for t in reversed(trims)]  # destroy list: last trimmed first
    assert all(s.values["order"] == ex.state["order"] for s in ex.steps if s.func == "kmem_freepages")
    for pfn in destroyed:
        assert k.mem_map.pfn_to_page(pfn) is None  # back in the buddy allocator
    assert keys[-1] == ("__free_one", "push")


def test_flush_free_block_default_is_the_one_object_per_slab_cache():
    _, ex = scenario("flush-free-block")
    assert (ex.state["cache"], ex.state["num"], ex.state["order"], ex.state["batchcount"]) == ("kmalloc-8k", 1, 1, 4)
    # every emptied objfreelist slab was full: its freed object becomes the freelist storage
    assert [k for k in ex.decisions() if k[0] == "slab_put_obj"].count(("slab_put_obj", "objfreelist")) == 4
    assert sum(1 for k in ex.decisions() if k == ("free_block", "to_free")) == 4


def test_alien_stages_in_the_alien_array():
    _, ex = scenario("alien")
    keys = ex.decisions()
    al = first(ex, "cache_free_alien", "alien")
    assert (al["node"], al["page_node"]) == (0, 1)
    st = first(ex, "__cache_free_alien", "alien_stage")
    assert st["avail"] < st["limit"]
    assert first(ex, "__free_one", "push")["node"] == 1
    assert ("___cache_free", "freehit") not in keys and ("___cache_free", "freemiss") not in keys


def test_alien_overflow_drains_first():
    _, ex = scenario("alien-overflow")
    keys = ex.decisions()
    ov = first(ex, "__cache_free_alien", "alien_overflow")
    assert ov["avail"] == ov["limit"] == 12
    dr = first(ex, "__drain_alien_cache", "alien_drain")
    assert dr["node"] == 1 and dr["to_shared"] + dr["to_slabs"] == 12
    assert keys.index(("__drain_alien_cache", "alien_drain")) < keys.index(("__free_one", "push"))
    assert first(ex, "__free_one", "push")["avail"] == 1


def test_alloc_hit_returns_the_object_just_freed():
    _, ex = scenario("alloc-hit")
    assert ("____cache_alloc", "alloc_hit") in ex.decisions()
    assert ("cache_alloc_refill", "refill") not in ex.decisions()
    assert ex.result == ex.setup[-1]["ptr"] == first(ex, "slab_alloc", "done")["obj"]


def test_alloc_refill_without_growing():
    _, ex = scenario("alloc-refill")
    keys = ex.decisions()
    assert ("____cache_alloc", "alloc_miss") in keys and ("cache_alloc_refill", "refill") in keys
    assert ("cache_alloc_refill", "refill_slabs") in keys or ("cache_alloc_refill", "refill_shared") in keys
    assert ("cache_alloc_refill", "must_grow") not in keys and ("kmem_getpages", "pages") not in keys
    assert ex.state["ac_avail"] == 0


def test_alloc_refill_from_the_shared_array_on_smp():
    k = boot(2)
    c = k.kmalloc_slab(64, 0)
    objs = [k.kmalloc(64, cpu=1) for _ in range(c.limit + 1)]
    for p in objs:
        k.kfree(p, cpu=1)  # CPU 1's flush fills the shared array
    ex = run_scenario("alloc-refill", k)
    sh = first(ex, "cache_alloc_refill", "refill_shared")
    assert sh["nr"] > 0


def test_alloc_grow_gets_pages_from_the_buddy_allocator():
    _, ex = scenario("alloc-grow")
    keys = ex.decisions()
    assert keys.index(("cache_alloc_refill", "must_grow")) < keys.index(("kmem_getpages", "pages"))
    assert ("cache_grow_begin", "grow") in keys and ("cache_grow_end", "grow_end") in keys
    refill = first(ex, "cache_alloc_refill", "refill")
    assert refill["free_objects"] == 0
    take = first(ex, "alloc_block", "take")
    assert take["src"] == "new" and take["active"] == 0


def test_not_slab_resolves_the_tail_page_and_ignores_the_free():
    k, ex = scenario("not-slab")
    keys = ex.decisions()
    tail = first(ex, "compound_head", "tail")
    assert tail["word"] & 1 and tail["head_pfn"] == tail["pfn"] - 1 == ex.setup[0]["pfn"]
    assert ("virt_to_cache", "not_slab") in keys and ("__cache_free", "hooks") not in keys
    assert any("Object is not a Slab page" in m for m in k.dmesg)
    text = narrate(ex.steps)
    assert "TAIL page" in text and "bit 0 set" in text


def test_scenario_errors():
    with pytest.raises(ScenarioError, match="--cpus 2"):
        run_scenario("flush-shared", boot(1))
    with pytest.raises(ScenarioError, match="--nodes 2"):
        run_scenario("alien", boot(2, 1))
    with pytest.raises(ScenarioError, match="shared array"):
        run_scenario("flush-shared", boot(2), 8192)
    with pytest.raises(ScenarioError, match="unknown scenario"):
        run_scenario("nope", boot(1))
    with pytest.raises(ScenarioError, match="--freelist-random"):
        run_scenario("grow-shuffle", boot(1))
    k = Kernel(MachineConfig.build(cpus=2, nodes=2, noaliencache=True))
    with pytest.raises(ScenarioError, match="noaliencache"):
        run_scenario("alien-overflow", k)
    k = Kernel(MachineConfig.build(cpus=2, nodes=2, noaliencache=True))
    ex = run_scenario("alien", k)  # without alien arrays the free goes straight to the home node's slabs
    assert ("__cache_free_alien", "alien_direct") in ex.decisions() and ("free_block", "entry") in ex.decisions()


def test_long_free_block_loops_are_shortened_unless_full():
    _, ex = scenario("flush-free-block", 64, 2)
    short, full = narrate(ex.steps), narrate(ex.steps, full=True)
    assert "more objects returned the same way" in short and "more objects" not in full
    assert full.count("slab_put_obj: obj_to_index") == ex.state["batchcount"]
    assert short.count("slab_put_obj: obj_to_index") == 4
    assert "另有" in narrate(ex.steps, "zh")


# ---- golden narrations (the same files as tests/cli/test_explain.py) ------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_golden_narration(name, lang):
    _, ex = scenario(name)
    text = render_explanation(ex, lang, summary=SCENARIOS[name].summary[lang])
    check_golden(f"{name}.{lang}.txt", text)



def _workload_steps() -> list[Step]:
    """Steps from workloads that run most instrumented paths (free and alloc paths, alien arrays with and
    without noaliencache, off-slab freelists, debug checks, init_on_free, memory policy, reaping, tuning)."""
    steps: list[Step] = []
    # 1: debug build, 2 nodes, alien frees, off-slab cache (a constructor keeps it off objfreelist)
    k = Kernel(MachineConfig.build(cpus=4, nodes=2, CONFIG_DEBUG_SLAB=True))
    k.explain = ex = Explain()
    c = k.kmem_cache_create("offslab", 512, 0, 0, True)
    objs = [k.kmem_cache_alloc(c, cpu=2) for _ in range(300)]
    for p in objs:
        k.kmem_cache_free(c, p, cpu=0)
    ptrs = [k.kmalloc(100, cpu=1) for _ in range(200)] + [k.kmalloc_node(3000, GFP_KERNEL, 1, cpu=0)]
    for p in ptrs:
        k.kfree(p, cpu=3)
    k.kfree(0)
    k.kmalloc(0)
    k.kmalloc(1 << 23)
    k.kmalloc_node(1 << 23, GFP_KERNEL, 0)
    k.set_mempolicy(0, "preferred", [1])
    k.kmalloc(64, cpu=0)
    k.set_mempolicy(0)
    k.advance(k.jiffies + 20 * k.config.HZ)
    k.slabinfo_write("offslab 16 8 2")
    k.kmem_cache_shrink(c)
    k.kmem_cache_destroy(c)
    steps += ex.steps
    # 2: production build with init_on_free, hardened freelists, noaliencache
    k = Kernel(MachineConfig.build(cpus=2, nodes=2, init_on_free=True, CONFIG_SLAB_FREELIST_HARDENED=True,
                                   noaliencache=True))
    k.explain = ex = Explain()
    ptrs = [k.kmalloc(8192, cpu=0) for _ in range(40)] + [k.kmalloc(64, cpu=1)]
    for p in ptrs:
        k.kfree(p, cpu=0)
    p = k.kmalloc(64, cpu=0)
    k.kfree(p, cpu=0)
    k.kfree(p, cpu=0)  # an immediate double free: dropped by the hardened check
    page = k.page_alloc.alloc_pages_node(0, GFP_KERNEL, 0, 0)
    k.kfree(page.address + 8, cpu=0)
    k.kfree(0xFFFF888000000000 + (2 << 30) - 3 * 4096, cpu=0)  # memory nobody allocated
    c = k.kmem_cache_create("with_ctor", 128, 0, 0, True)  # init_on_free exempts caches with a constructor
    k.kmem_cache_free(c, k.kmem_cache_alloc(c, cpu=0), cpu=0)
    ptrs = [k.kmalloc(64, cpu=1) for _ in range(1000)]
    for p in ptrs:  # the shared array of node 1 fills up, then free_block takes over
        k.kfree(p, cpu=1)
    steps += ex.steps
    # 3: CONFIG_SLAB_FREELIST_RANDOM from the start of boot: per-slab shuffles before kmem_cache_init_late,
    # the random_seq it makes, shuffles from the list after it, a cache of one object per slab
    k = Kernel(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True), boot=False)
    k.explain = ex = Explain()
    k.boot_early()
    k.kmalloc(192)
    k.boot_complete()
    k.kmalloc(192)
    k.kfree(k.kmalloc(8192))
    steps += ex.steps
    return steps


# keys no workload above reaches (pfmemalloc reserves, allocation failure): checked with sample values
SAMPLES: dict[tuple[str, str], dict] = {
    ("___cache_free", "pfmemalloc"): {"cache": "c", "obj": 0xFFFF888001000000, "pfn": 0x1000, "node": 0},
    ("cache_grow_begin", "grow_fail"): {"cache": "c", "order": 1, "node": 0},
    ("slab_alloc", "failed"): {"cache": "c"},
    ("fallback_alloc", "fallback"): {"cache": "c"},
    ("cache_alloc_refill", "raced"): {"cache": "c", "free_objects": 48},
}


def test_templates_fit_the_values_the_core_records():
    """A template that does not fit its step's values falls back to the generic line: catch that here."""
    steps = _workload_steps()
    for name in SCENARIOS:
        steps += scenario(name)[1].steps
    seen = {(s.func, s.key) for s in steps}
    missing = core_step_keys() - seen - SAMPLES.keys()
    assert not missing, f"no workload records {sorted(missing)}: extend _workload_steps or SAMPLES"
    steps += [Step(f, k, v) for (f, k), v in SAMPLES.items()]
    for s in steps:
        for lang in ("en", "zh"):
            text = render_step(s.func, s.key, s.values, lang)
            assert text != generic(s.func, s.key, s.values), f"{lang} {s.func}/{s.key} does not fit {s.values}"
    for lang in ("en", "zh"):
        assert narrate(steps, lang)
