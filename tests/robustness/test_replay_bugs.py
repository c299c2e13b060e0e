"""Bugs of the replay engine (src/kslab/trace/replay.py) found by the fuzzer, now fixed: regression tests.

docs/robustness.md describes each one (input, line, traceback)."""

from __future__ import annotations

import io
import time

import pytest

from kslab.mm.config import MachineConfig
from kslab.mm.errors import KslabError
from kslab.trace.ftrace import ParseStats, iter_events
from kslab.trace.replay import Replayer, ReplayOptions


def replay(text: str, opts: ReplayOptions | None = None, **machine: object) -> Replayer:
    rep = Replayer(MachineConfig.build(**machine), None, opts or ReplayOptions())  # type: ignore[arg-type]
    stats = ParseStats()
    s = rep.run(iter_events(io.StringIO(text), skip_bad=True, stats=stats))
    assert sum(s.applied.values()) + sum(s.skipped.values()) == s.events == stats.events
    return rep


# Found by `python -m kslab.tools.fuzz --seed 2` (input 654), minimized.  Line 2, a kmalloc whose call site is
# one of the model's internal ones (init_cache_node: "alloc:node"/"alloc:array"), is paired with an array cache
# that the model allocated for itself at boot: kmap[ffff8880005ed520] = that array_cache object.  Line 3, an
# ordinary kmem_cache_free of the same kernel pointer (its call site is not internal), then frees the model's own
# structure in Replayer._free -> _do_free -> kmem_cache_free, while the model still uses it; the model later
# frees it again, and Replayer.check() finds the object twice in the per-CPU array:
#   SlabCorruptionError: kmalloc-128: object 0x... is in the arrays twice (undetected double free)
# A trace free must not free an object the model holds as its own structure (internal_rev): skip it with a
# reason (e.g. "free of a pointer paired with an internal structure").
DOUBLE_FREE = """\
 kworker/0:1-0       1.... 46.027695: kmem_cache_alloc: call_site=alloc_arraycache+0x1/0x2 ptr=ffff88800213a240 \
bytes_req=24 bytes_alloc=256 gfp_flags=0xffffffffffffffff name=dentry
     a-b-c-1       0.... 73.420565: kmalloc: call_site=init_cache_node+0x1/0x2 ptr=ffff8880005ed520 \
bytes_req=64 bytes_alloc=32 gfp_flags=GFP_KERNEL
       ete-1       3dp.1 72.688766: kmem_cache_free: call_site=alloc_desc+0x39/0x1d0 ptr=ffff8880005ed520 \
name=kmalloc-64
"""


def test_trace_free_never_frees_a_model_internal_structure() -> None:
    rep = replay(DOUBLE_FREE, cpus=1)
    rep.check()


# A jump of the trace's clock by T seconds with --reap timer runs every reap timer that falls due on the way:
# about T/2 reaps per CPU (Replayer._clock -> Kernel.advance(run_timers=True)), ~50,000 per second of real time.
# A trace with one far time stamp (a clock change, a corrupt line, a 'perf script' with wall-clock time:
# 1.7e9 s) keeps `kslab replay --reap timer` busy for hours.  The timers could be caught up in bounded time
# (after a few idle periods a reap changes nothing more).  Here: a 10^6 s gap on 2 CPUs, 10^6 reaps.
def test_reap_timer_time_jump_is_bounded() -> None:
    text = ("  a-1 [000] ....  0.100000: tracing_mark_write: x\n"
            "  a-1 [000] ....  1000000.000000: tracing_mark_write: y\n")
    rep = Replayer(MachineConfig.build(cpus=2), None, ReplayOptions(reap="timer"))
    calls = 0
    real = rep.k.run_cache_reap

    def counting(cpu: int, rearm: bool = False) -> None:
        nonlocal calls
        calls += 1
        if calls > 20_000:
            raise RuntimeError("more than 20,000 reaps for one time jump")
        real(cpu, rearm)

    rep.k.run_cache_reap = counting  # type: ignore[method-assign]
    t0 = time.perf_counter()
    rep.run(iter_events(io.StringIO(text)))
    assert calls <= 20_000 and time.perf_counter() - t0 < 10


# The CLI checks --action group references before the replay (kslab.cli.replay.parse_actions); the library does
# not: Replayer(actions=[("(x)", r"snapshot \2")]) raises re.error (not a KslabError) from Match.expand in
# Replayer._mark at the first marker that matches.
def test_bad_action_group_reference_is_a_kslab_error() -> None:
    with pytest.raises(KslabError):
        replay("  a-1 [000] ....  0.1: tracing_mark_write: x\n",
               ReplayOptions(actions=[("(x)", r"snapshot \2")]), cpus=1)


def free_in_model(rep: Replayer, addr: int) -> bool:
    """Whether the model object at ``addr`` is free: on its slab's free stack, or in an array cache."""
    k = rep.k
    page = k.page_of(addr)
    assert page is not None and page.slab_cache is not None and page.fl is not None
    c = page.slab_cache
    obj = addr - (c.obj_offset if k.debug else 0)
    if (obj - page.s_mem) // c.size in page.fl[page.active:c.num]:
        return True
    arrays = [ac.entry for ac in c.cpu_cache]
    for n in c.node:
        if n is not None:
            arrays += [n.shared.entry] if n.shared is not None else []
            arrays += [a.entry for a in (n.alien or ()) if a is not None]
    return any(obj in e for e in arrays)


# Found by `python -m kslab.tools.fuzz --seed 4` (inputs 17, 8658, 12638), minimized.
# Replayer._model_event withdraws a structure the model frees from the queue of model allocations awaiting a
# trace allocation only from the queue named after the free's tag: kfree(n.addr, internal="__kmem_cache_release")
# (slab_common.py, __kmem_cache_release freeing a kmem_cache_node) is tagged "free:array", so the node's pointer
# stays in pending_model["alloc:node"].  Line 1 here makes the replay infer a cache (_infer_cache creates and
# destroys two candidates: two stale node pointers queued, the same address twice).  Line 2's cache_alloc_refill
# makes _align_array give the per-CPU array's objects (the freed node among them) to the placeholder pool; line 4,
# a kmalloc from init_cache_node, is then paired with that freed node:
#   Replayer.check(): SlabCorruptionError: kmalloc-128: pool object 0x... is also mapped to a kernel pointer
# (on other inputs: "object 0x... is both in an array cache and free in its slab").  Withdraw a freed pointer
# from every alloc:* queue (or tag the node free "free:node").
STALE_QUEUE = """\
                -1       [002] d.h2 6087576: cache_alloc_refill <-__kmalloc
             cut-58      [001] d... 39290259: kmem_cache_alloc: call_site=getname_flags+0x2b/0x180 \
ptr=ffff8880000a67d0 bytes_req=48 bytes_alloc=48 gfp_flags=GFP_KERNEL|__GFP_ZERO name=kmem_cache_node
         my task-4194304 [002] .... 39326728: kmalloc_node: call_site=ext4_foo+0x10/0x20 [ext4] \
ptr=ffff88800021e0c0 bytes_req=100 bytes_alloc=64 gfp_flags=0x0 node=0
         my task-1234    [000] .... 105381876: kmalloc: call_site=init_cache_node+0x1/0x2 ptr=ffff88800a148000 \
bytes_req=192 bytes_alloc=131072 gfp_flags=__GFP_DMA|__GFP_DMA32 node=3
"""


def test_a_structure_the_model_freed_is_never_paired() -> None:
    rep = replay(STALE_QUEUE, cpus=1, CONFIG_DEBUG_SLAB=True)
    rep.check()
    for kptr, mptr in rep.kmap.items():
        assert not free_in_model(rep, mptr), f"{kptr:#x} is mapped to the free model object {mptr:#x}"


# Replayer._record_alloc: a traced allocation of a kernel pointer the replay believes live frees the old model
# object ("reallocated without a traced free") through _do_free, even when that object is one of the model's own
# structures paired with the pointer (internal_rev): the same class of bug as the first one above, by another
# path.  Line 1 infers cache foo (its kmem_cache_node is queued as a model allocation), line 2 (init_cache_node)
# pairs ffff888012345600 with that node, line 3 allocates ffff888012345600 again from an ordinary call site: foo's
# live node structure is freed to kmalloc-128 (check() cannot see it; the next kmalloc(128) gets it while foo
# still uses it).  The implicit free must only forget an internal pairing, not free the structure.
IMPLICIT_FREE = """\
  a-1 [000] ....  0.1: kmem_cache_alloc: call_site=f+0x1/0x2 ptr=ffff888012e27420 bytes_req=48 bytes_alloc=48 \
gfp_flags=GFP_KERNEL name=foo
  a-1 [000] ....  0.2: kmalloc: call_site=init_cache_node+0x1/0x2 ptr=ffff888012345600 bytes_req=120 \
bytes_alloc=128 gfp_flags=GFP_KERNEL
  a-1 [000] ....  0.3: kmalloc: call_site=f+0x1/0x2 ptr=ffff888012345600 bytes_req=100 bytes_alloc=128 \
gfp_flags=GFP_KERNEL
"""


def test_a_reused_pointer_never_frees_a_model_structure() -> None:
    rep = replay(IMPLICIT_FREE, cpus=1)
    rep.check()
    foo = rep.k.find_cache("foo")
    assert foo is not None and foo.node[0] is not None
    assert not free_in_model(rep, foo.node[0].addr), "foo's kmem_cache_node was freed"


# Found by `python -m kslab.tools.fuzz --seed 4` (input 19886), minimized.  Replayer._model_event maps the tag of a
# model event to its group without looking at whether the event is an allocation or a free: the error path of
# create_cache() frees the new struct kmem_cache with kmem_cache_free(..., internal="create_cache")
# (slab_common.py), INTERNAL_TAGS maps "create_cache" to "alloc:kmem_cache", and the FREED pointer is queued as a
# model allocation awaiting its trace allocation.  Line 1 (a cache "my cache" of 10^30 bytes to infer) makes the
# creation fail; lines 2 and 3 (create_cache, kmem_cache_create_usercopy: "alloc:kmem_cache") are both paired with
# that freed object (kmap[ffff8880000bf370] and kmap[ffff8880c5d7f000] -> the same model pointer; internal_rev
# keeps the second), so line 4's kfree of the first is not recognised as a model structure and frees the
# already free object:
#   Replayer.check(): SlabCorruptionError: kmem_cache: object 0x... is in the arrays twice (undetected double free)
FREE_QUEUED_AS_ALLOC = """\
             sh]-4194304 [002] d... 47.385627: kmem_cache_alloc: call_site=alloc_bprm+0x1/0x2 ptr=ffffffffffffffff \
bytes_req=999999999999999999999999999999 bytes_alloc=999999999999999999999999999999 gfp_flags=GFP_KERNEL \
name=my cache
             cut-0       [002] dNs. 106.085684: kmem_cache_alloc: call_site=create_cache+0x5a/0x1b0 \
ptr=ffff8880000bf370 bytes_req=64 bytes_alloc=1_000 gfp_flags= name=kmalloc-1k
     kworker/0:1-4194304 [001] d.h2 106.127589: kmem_cache_alloc_node: call_site=kmem_cache_create_usercopy+0x1/0x2 \
ptr=ffff8880c5d7f000 bytes_req=48 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 name=my cache
             sh]-58      [000] .... 157.723481: kfree: call_site=slab_destroy+0x1/0x2 ptr=ffff8880000bf370
"""


def test_a_model_free_is_never_queued_as_a_model_allocation() -> None:
    rep = replay(FREE_QUEUED_AS_ALLOC, cpus=1)
    rep.check()
    paired = list(rep.kmap.values())
    assert len(paired) == len(set(paired)), "two kernel pointers stand for one model object"
    for kptr, mptr in rep.kmap.items():
        assert not free_in_model(rep, mptr), f"{kptr:#x} is mapped to the free model object {mptr:#x}"
