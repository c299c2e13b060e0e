"""What kslab top's cache view shows: the arrays, the lists and the counters of a cache, as the model holds
them, and the kernel's slabinfo line beside the model's."""

from __future__ import annotations

from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slabinfo import get_slabinfo
from kslab.report.top_detail import KernelSlabinfo, cache_detail


def numa_machine() -> Kernel:
    return Kernel(MachineConfig.build(cpus=4, nodes=2))


def test_every_cpu_and_node_with_its_arrays():
    k = numa_machine()
    c = k.find_cache("kmalloc-128")
    k.kfree(k.kmalloc(100, cpu=2), cpu=0)  # a remote free: into node 0's alien array for node 1
    assert c.node[0].alien[1].avail > 0
    text = "\n".join(cache_detail(k, c))
    for cpu in range(4):
        ac = c.cpu_cache[cpu]
        assert f"    CPU {cpu:<6d} {ac.avail:6d} {ac.limit:6d} {ac.batchcount:>10d} {ac.touched:8d}" in text
    for nid in (0, 1):
        n = c.node[nid]
        assert (f"slabs partial {len(n.slabs_partial)}, full {len(n.slabs_full)}, free {len(n.slabs_free)}"
                in text)
        assert (f"free_objects {n.free_objects}, free_limit {n.free_limit}; next_reap at jiffies {n.next_reap}"
                in text)
        other = 1 - nid
        alien = n.alien[other]
        assert f"    {f'alien[{other}]':<10s} {alien.avail:6d} {alien.limit:6d} 0xbaadf00d" in text
    assert f"    shared     {c.node[0].shared.avail:6d}" in text
    assert "next cache_reap (jiffies now 0): CPU 0 in " in text


def test_timers_not_run_are_labelled():
    k = numa_machine()
    text = "\n".join(cache_detail(k, k.find_cache("kmalloc-64"), timers_run=False))
    assert "cache_reap runs where the trace shows them (--reap trace)" in text


def test_beside_the_kernel_and_the_differences():
    k = Kernel(MachineConfig.build(cpus=1))
    c = k.find_cache("kmalloc-64")
    d = get_slabinfo(c)
    rows = {c.name: {"active_objs": d.active_objs + 3, "num_objs": d.num_objs, "objsize": d.objsize,
                     "active_slabs": d.active_slabs, "num_slabs": d.num_slabs}}
    ks = KernelSlabinfo("slabinfo.x", 12, rows, read_line=15)
    text = "\n".join(cache_detail(k, c, ks))
    assert "kernel  slabinfo.x (line 12)" in text
    assert f"    active_objs      {d.active_objs:8d} {d.active_objs + 3:8d}   differs by -3" in text
    assert f"    num_objs         {d.num_objs:8d} {d.num_objs:8d}\n" in text
    assert ks.differs(d)
    eq, tot = ks.score([d])
    assert (eq, tot) == (3, 4)
    assert "has no such cache" in "\n".join(cache_detail(k, k.find_cache("kmalloc-32"), ks))
