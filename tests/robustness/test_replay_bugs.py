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
    rep = Replayer(MachineConfig.build(**machine), None, opts or ReplayOptions(skip_bad=True))  # type: ignore[arg-type]
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
