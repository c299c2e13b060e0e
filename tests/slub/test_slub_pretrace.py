"""The kernel's slabs from before its trace began, as the trace reveals them (kslab.trace.replay_slub.pretrace),
and the model's copy of them (kslab.mm.slub.adopt)."""

from __future__ import annotations

import io

import pytest
from test_slub_replay import BASE, T, machine

from kslab.mm.config import MachineConfig
from kslab.mm.errors import ConfigError
from kslab.mm.kernel import MemPolicy
from kslab.mm.slub.adopt import adopt_cpu_slab, adopt_partial_slab, adopt_slab, object_address
from kslab.mm.slub.machine import SlubKernel
from kslab.mm.slub.slab import StatItem
from kslab.trace.ftrace import iter_events
from kslab.trace.replay_slub.engine import SlubReplay
from kslab.trace.replay_slub.fidelity import missing_slabs, node_split
from kslab.trace.replay_slub.pretrace import (
    PreTrace,
    adopt_full_slabs,
    adopt_pretrace,
    boot_policies,
    partial_order,
    scan_pretrace,
)

SLAB2 = BASE + 0x1000  # a second kmalloc-64 slab (order 0: 64 objects of 64 bytes)


def scan(t: T, cpus: int = 1) -> tuple[SlubKernel, PreTrace]:
    k = machine(cpus)
    return k, scan_pretrace(k, iter_events(io.StringIO(t.text())))


def test_first_events_say_which_objects_were_in_use_and_the_free_list_order() -> None:
    t = T().cache_free(BASE + 0x40, "kmalloc-64").cache_alloc(BASE + 0x80, "kmalloc-64", 64) \
        .cache_alloc(BASE, "kmalloc-64", 64).cache_free(BASE + 0x80, "kmalloc-64") \
        .cache_alloc(BASE + 0x80, "kmalloc-64", 64)
    _, pre = scan(t)
    ks = pre.slabs[BASE]
    assert ks.cache.name == "kmalloc-64" and ks.nid == 0
    assert ks.live == {1: BASE + 0x40}
    assert ks.free == [2, 0]  # the order of the first allocations; the reallocation is not a first event
    assert pre.cpu_first[("kmalloc-64", 0)] == (BASE, False)


def test_a_slab_whose_page_the_trace_allocates_is_not_older_than_the_trace() -> None:
    pfn = (SLAB2 - 0xFFFF888000000000) >> 12
    t = T()
    t._line(0, f"mm_page_alloc: page=ffffea0000000000 pfn={pfn:#x} order=0 migratetype=0 gfp_flags=GFP_KERNEL")
    t.func("___slab_alloc", "kmem_cache_alloc_noprof").cache_alloc(SLAB2, "kmalloc-64", 64)
    _, pre = scan(t)
    assert SLAB2 not in pre.slabs
    assert pre.cpu_first[("kmalloc-64", 0)] == (SLAB2, True)  # the slow path: no cpu slab from before


def test_a_kfree_of_an_object_of_a_known_slab_finds_its_cache() -> None:
    t = T().kfree(BASE + 0xC0).cache_alloc(BASE, "kmalloc-64", 64).kfree(BASE + 0x1234567)
    _, pre = scan(t)
    assert pre.slabs[BASE].live == {3: BASE + 0xC0}


def test_adopted_slabs_hand_out_the_kernels_objects_in_order() -> None:
    """The slab of CPU 0's first (fast) allocation becomes its cpu slab; another slab with free objects goes on
    the node's partial list; the model then hands out objects at the kernel's offsets, in the kernel's order."""
    t = T()
    for off in (0x80, 0x0, 0xC0):
        t.cache_alloc(BASE + off, "kmalloc-64", 64)
    t.func("___slab_alloc", "kmem_cache_alloc_noprof").cache_alloc(SLAB2 + 0x200, "kmalloc-64", 64)
    t.cache_free(BASE + 0x40, "kmalloc-64").cache_free(SLAB2 + 0x100, "kmalloc-64")
    k, pre = scan(t)
    rep = SlubReplay(k)
    rep.adopt(adopt_pretrace(k, pre))
    s = k.find_cache("kmalloc-64")
    assert s is not None
    c = s.cpu_slab[0]
    assert c.slab is not None and c.slab.frozen and c.slab.inuse == c.slab.objects
    assert s.node[0].nr_partial == 1 and s.node[0].nr_slabs == 2
    k.check()
    rep.run(iter_events(io.StringIO(t.text())))
    assert rep.layout[False] == 0 and rep.layout[True] == 4
    assert rep.skipped == {} or set(rep.skipped) <= {"function-tracer entry (not replayed)"}
    assert rep.applied["kmem_cache_free"] == 2  # both frees of objects older than the trace were paired
    k.check()


def test_partial_order_undoes_get_partial_nodes_batches() -> None:
    """get_partial_node() gives the head to the CPU and pushes the next cpu_partial_slabs/2 + 1 onto the per-CPU
    partial list, which hands them out last first."""
    assert partial_order(list(range(8)), 4) == [0, 3, 2, 1, 4, 7, 6, 5]  # type: ignore[arg-type]
    assert partial_order(list(range(3)), 0) == [0, 1, 2]  # type: ignore[arg-type]


def test_node_partial_slabs_leave_in_the_order_the_kernel_first_used_them() -> None:
    k = machine()
    s = k.find_cache("kmalloc-64")
    assert s is not None
    t = T().cache_alloc(BASE, "kmalloc-64", 64)  # CPU 0's cpu slab: BASE's
    bases = [BASE + 0x1000 * i for i in (3, 1, 8, 2, 7, 4, 6, 5)]
    for b in bases:  # each later slab: object 0 free, the kernel takes them in this order
        t.func("___slab_alloc", "kmem_cache_alloc_noprof").cache_alloc(b, "kmalloc-64", 64)
    for b in bases:  # object 1 was in use
        t.cache_free(b + 0x40, "kmalloc-64")
    pre = scan_pretrace(k, iter_events(io.StringIO(t.text())))
    rep = SlubReplay(k)
    pairs = adopt_pretrace(k, pre)
    rep.adopt(pairs)
    assert s.node[0].nr_partial == 8
    allocs = t.text().split("\n")
    allocs = allocs[:next(i for i, line in enumerate(allocs) if "kmem_cache_free" in line)]
    rep.run(iter_events(io.StringIO("\n".join(allocs) + "\n")))
    assert all(rep.kmap[b] == pairs[b + 0x40] - 0x40 for b in bases)  # each from its own copy
    assert s.cpu_slab[0].stat[StatItem.ALLOC_FROM_PARTIAL] == 2 and s.cpu_slab[0].stat[StatItem.CPU_PARTIAL_ALLOC] == 6
    k.check()


def test_adopt_helpers_keep_the_counters() -> None:
    k = machine()
    s = k.find_cache("kmalloc-64")
    assert s is not None
    slab = adopt_slab(k.a, s, 0, 0, [5, 2])
    assert slab is not None and slab.inuse == 62 and slab.freelist == object_address(s, slab, 5)
    adopt_partial_slab(s, slab)
    full = adopt_slab(k.a, s, 0, 0, [])
    assert full is not None
    with pytest.raises(ConfigError):
        adopt_partial_slab(s, full)
    cpu = adopt_slab(k.a, s, 0, 0, [0])
    assert cpu is not None
    adopt_cpu_slab(k.a, s, cpu, 0)
    with pytest.raises(ConfigError):
        adopt_cpu_slab(k.a, s, cpu, 0)
    with pytest.raises(ConfigError):
        adopt_slab(k.a, s, 0, 0, [64])
    assert s.node[0].nr_slabs == 3
    assert k.kmem_cache_alloc(s) == object_address(s, cpu, 0)
    adopt_full_slabs(k, {("kmalloc-64", 0): 2, ("no-such-cache", 0): 1})
    assert s.node[0].nr_slabs == 5


def test_node_split_and_missing_slabs() -> None:
    assert node_split("7 N0=3 N1=4") == {0: 3, 1: 4} and node_split("2") == {0: 2} and node_split("") == {}
    rep = T().cache_alloc(BASE, "kmalloc-64", 64).replay()
    ksys = {":0000064": {"slabs": "3 N0=3"}, "no-such-dir": {"slabs": "1 N0=1"}, "kmalloc-8k": {"order": "3"}}
    assert missing_slabs(rep, ksys) == {("kmalloc-64", 0): 2}


def test_missing_slabs_count_the_total_the_kernel_has_beyond() -> None:
    k = SlubKernel(MachineConfig.build(cpus=2, nodes=2, mem="256M"))
    rep = T().cache_alloc(BASE, "kmalloc-64", 64).replay(SlubReplay(k))  # one slab, on CPU 0's node 0
    assert missing_slabs(rep, {":0000064": {"slabs": "3 N0=1 N1=2"}}) == {("kmalloc-64", 1): 2}
    assert missing_slabs(rep, {":0000064": {"slabs": "2 N0=0 N1=2"}}) == {("kmalloc-64", 1): 1}
    assert missing_slabs(rep, {":0000064": {"slabs": "1 N0=0 N1=1"}}) == {}


def test_an_interleave_policy_spreads_new_slabs_over_the_nodes() -> None:
    """alloc_slab_page() without a node follows the task's mempolicy: new slabs alternate nodes; an allocation
    for a node takes that node's pages."""
    k = SlubKernel(MachineConfig.build(cpus=2, nodes=2, mem="256M"))
    s = k.find_cache("kmalloc-4k")
    assert s is not None and k.online_nodes == [0, 1]
    k.set_policy(0, MemPolicy("interleave", (0, 1), -1))
    per_slab = s.oo & 0xFFFF
    for _ in range(3 * per_slab):
        k.kmem_cache_alloc(s, cpu=0)
    assert [n.nr_slabs for n in s.node] == [2, 1]
    k.kmem_cache_alloc_node(s, node=0, cpu=1)
    assert [n.nr_slabs for n in s.node] == [3, 1]
    k.clear_policies()
    for _ in range(per_slab):
        k.kmem_cache_alloc(s, cpu=0)
    assert [n.nr_slabs for n in s.node] == [4, 1]  # the local policy: CPU 0's node
    k.check()


def test_the_boot_policy_applies_when_the_trace_shows_init_exec() -> None:
    t = T().cache_alloc(BASE, "kmalloc-64", 64)
    t.kmalloc(BASE + 0x2000, 416, 512, site="alloc_bprm+0x46/0x350")
    k2 = SlubKernel(MachineConfig.build(cpus=2, nodes=2, mem="256M"))
    exec_line = t.lines[-1]
    t.lines[-1] = exec_line.replace("task-1 ", "task-5 ")
    pre = scan_pretrace(k2, iter_events(io.StringIO(t.text())))
    assert not pre.init_exec  # an exec of another task
    t.lines[-1] = exec_line
    pre = scan_pretrace(k2, iter_events(io.StringIO(t.text())))
    pol = boot_policies(k2, pre)
    assert pre.init_exec and pol is not None and pol.active
    assert boot_policies(machine(), pre) is None  # one node: nothing to interleave
