"""Slabs older than the trace lined up with the kernel's first pointers into them (trace/replay/bootslabs.py),
as kmalloc-32 of the capture R2 showed (76 objects allocated before the trace's first one), and
kmem_cache_init_late() followed one enable_cpucache line at a time."""

from __future__ import annotations

import io

from kslab.manifest import parse_manifest
from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slab_common import kmem_cache_init_late_one
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Followed, Replayer, ReplayOptions

OLD_SLAB = 0xFFFF888012345000  # a kmalloc-64 slab of the kernel's that no traced grow gave
GROWN_PFN = 0x23456  # a kmalloc-128 slab the trace shows being grown
BOOT = "        init-1       [000] ....     1: enable_cpucache <-kmem_cache_init_late\n"


def _line(ts: int, payload: str, flags: str = "d...") -> str:
    return f"          init-1      [000] {flags}     {ts}: {payload}\n"


def _kmalloc(ts: int, ptr: int, size: int) -> str:
    return _line(ts, f"kmalloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req={size} bytes_alloc={size} "
                 "gfp_flags=GFP_KERNEL", flags="....")


def _grown_slab(ts: int, pages: bool = True) -> str:
    """A refill of kmalloc-128 that grows a slab (its page shown unless not ``pages``), and its allocation."""
    page = _line(ts + 2, f"mm_page_alloc: page={0xFFFFEA0000000000 + 64 * GROWN_PFN:016x} pfn={GROWN_PFN} "
                 "order=0 migratetype=0 gfp_flags=__GFP_IO|__GFP_FS") if pages else ""
    return (_line(ts, "cache_alloc_refill <-__kmalloc") + _line(ts + 1, "cache_grow_begin <-cache_alloc_refill")
            + page + _line(ts + 3, "cache_grow_end <-cache_alloc_refill")
            + _kmalloc(ts + 4, 0xFFFF888000000000 + (GROWN_PFN << 12) + 15 * 128, 128))


def _replay(text: str) -> Replayer:
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    rep.run(iter_events(io.StringIO(text)), clock="counter")
    rep.check()
    return rep


def _offset(ptr: int) -> int:
    return ptr & 0xFFF


def _old_slab_trace(pages: bool = True) -> str:
    # the kernel's refill takes a batch of 16 from its old slab and hands out the last one (index 40),
    # then the next ones from its array (39, 38)
    return (BOOT + _grown_slab(10, pages) + _line(20, "cache_alloc_refill <-__kmalloc")
            + "".join(_kmalloc(21 + i, OLD_SLAB + (40 - i) * 64, 64) for i in range(3)))


def test_the_model_s_slab_is_lined_up_with_the_kernel_s_first_object_in_an_old_slab() -> None:
    rep = _replay(_old_slab_trace())
    for i in range(3):
        kptr = OLD_SLAB + (40 - i) * 64
        assert _offset(rep.kmap[kptr]) == _offset(kptr)
    assert rep.summary.followed[Followed.BOOT_SLAB_LINED] == 1
    c = rep.k.find_cache("kmalloc-64")
    assert c is not None
    # the objects before the batch were allocated before the trace: placeholders, counted as active
    pool = rep.placeholder[c]
    assert len(pool) >= 40 - 15
    assert rep.summary.followed[Followed.BOOT_SLAB_OBJECTS] == 40 - 15 - (rep.summary.placeholders["kmalloc-64"]
                                                                         - len(pool))


def test_a_slab_whose_grow_the_trace_shows_is_left_alone() -> None:
    rep = _replay(_old_slab_trace())
    assert rep.summary.followed[Followed.BOOT_SLAB_LINED] == 1  # kmalloc-64's, not kmalloc-128's
    assert not rep.summary.placeholders["kmalloc-128"]


def test_without_the_grows_pages_an_old_slab_cannot_be_told_from_a_new_one() -> None:
    rep = _replay(_old_slab_trace(pages=False))
    assert not rep.summary.followed[Followed.BOOT_SLAB_LINED]
    assert _offset(rep.kmap[OLD_SLAB + 40 * 64]) != _offset(OLD_SLAB + 40 * 64)


def test_a_trace_that_does_not_show_the_boot_is_left_alone() -> None:
    rep = _replay(_old_slab_trace().replace(BOOT, ""))
    assert not rep.summary.followed[Followed.BOOT_SLAB_LINED]


def test_a_free_of_an_object_older_than_the_trace_frees_the_one_at_its_index() -> None:
    kptr = OLD_SLAB + 10 * 64
    text = (BOOT + _grown_slab(10)
            + _line(20, f"kmem_cache_free: call_site=g+0x1/0x2 ptr={kptr:016x} name=kmalloc-64", flags="....")
            + _kmalloc(21, kptr, 64))
    rep = _replay(text)
    assert rep.summary.followed[Followed.BOOT_SLAB_FREES] == 1
    # the freed object went to the array and came back: at the kernel's offset
    assert _offset(rep.kmap[kptr]) == _offset(kptr)


def test_init_late_runs_one_cache_per_enable_cpucache_line() -> None:
    k = Kernel(MachineConfig.build(cpus=1), boot=False)
    k.boot_early()
    small = [i for i, c in enumerate(k.slab_caches) if c.size <= 256]
    first, second = k.slab_caches[small[0]], k.slab_caches[small[1]]
    for _ in range(small[0] + 1):
        assert kmem_cache_init_late_one(k)
    assert first.limit > 1 and second.limit == 1  # the loop has not reached the second cache yet
    assert not k.init_late_done
    k.init_late()
    assert second.limit > 1 and k.init_late_done and k.init_late_pending == []
    assert not kmem_cache_init_late_one(k)


def test_a_replay_steps_through_kmem_cache_init_late_as_the_trace_shows_it() -> None:
    manifest = parse_manifest(["foo 100 8 0x0 0", "@init_late"])
    k_lines = BOOT + BOOT.replace(" 1: ", " 2: ")
    rep = Replayer(MachineConfig.build(cpus=1), manifest, ReplayOptions())
    rep.begin(list(iter_events(io.StringIO(k_lines))), "counter")
    events = list(iter_events(io.StringIO(k_lines)))
    rep.feed(events[0])
    rep.flush()
    k = rep.k
    assert not k.init_late_done and k.init_late_pending is not None
    # foo, the newest cache, heads slab_caches: the loop's first step tuned it and no other
    assert k.slab_caches[0].name == "foo" and k.slab_caches[0].limit > 1
    assert k.init_late_pending == k.slab_caches[1:] and all(c.limit == 1 for c in k.slab_caches[1:])
    rep.feed(events[1])
    rep.flush()
    assert k.init_late_pending == k.slab_caches[2:]
    rep.finish()
    assert k.init_late_done and k.init_late_pending == [] and all(c.limit > 1 for c in k.slab_caches if c.size <= 256)
