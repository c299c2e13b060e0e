"""SLUB's boot options from a kernel command line (mm/slub.c, mm/slab_common.c __setup handlers, 6.12)."""

from __future__ import annotations

from kslab.mm.slub.init import kmem_cache_init
from kslab.mm.slub.options import apply_cmdline
from kslab.mm.slub.slub_def import SlubConfig

CAPTURED = ("console=ttyS0 nokaslr panic=-1 log_buf_len=16M trace_options=nohash-ptr trace_clock=counter "
            "ftrace_filter=___slab_alloc,__slab_free orun=S2")


def test_the_captures_give_no_slub_option() -> None:
    assert apply_cmdline(SlubConfig(), CAPTURED) == SlubConfig()


def test_orders_in_command_line_order() -> None:
    assert (apply_cmdline(SlubConfig(), "slab_min_order=5").slub_min_order,
            apply_cmdline(SlubConfig(), "slab_min_order=5").slub_max_order) == (5, 5)
    c = apply_cmdline(SlubConfig(), "slab_min_order=5 slab_max_order=2")
    assert (c.slub_min_order, c.slub_max_order) == (2, 2)
    c = apply_cmdline(SlubConfig(), "slub_max_order=20")
    assert c.slub_max_order == 10
    assert apply_cmdline(SlubConfig(), "slab_max_order=x").slub_max_order == 3  # no number: unchanged


def test_min_objects_debug_and_merging() -> None:
    c = apply_cmdline(SlubConfig(), "slub_min_objects=4 slab_debug=FZ,dentry slab_nomerge")
    assert (c.slub_min_objects, c.slab_debug, c.slab_nomerge) == (4, "FZ,dentry", True)
    assert apply_cmdline(SlubConfig(), "slab_debug").slab_debug == ""
    assert not apply_cmdline(SlubConfig(slab_nomerge=True), "slub_merge").slab_nomerge


def test_boot_line_reflects_the_options() -> None:
    sl = kmem_cache_init(apply_cmdline(SlubConfig(nr_cpu_ids=4, num_present_cpus=4, nr_node_ids=2),
                                       "slab_min_order=1 slab_min_objects=20"))
    assert sl.dmesg == ["SLUB: HWalign=64, Order=1-3, MinObjects=20, CPUs=4, Nodes=2"]
    k8 = sl.kmalloc_caches[0][3]
    assert k8 is not None and k8.oo >> 16 == 1  # slab_min_order=1: even kmalloc-8 gets two pages
