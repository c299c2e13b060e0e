"""A free whose flush came before another CPU's refill (trace/replay/reorder.py: FlushOrder)."""

from __future__ import annotations

import io

from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Followed, Replayer, ReplayOptions

FOLLOWED = Followed.FLUSH_BEFORE_REFILL
BASE = 0xFFFF888012340000
N = 121  # objects CPU 0 allocates


def _line(cpu: int, ts: int, payload: str, flags: str = "....") -> str:
    return f"          task-{7 + cpu}      [{cpu:03d}] {flags}     {ts}: {payload}\n"


def _kmalloc(cpu: int, ts: int, ptr: int) -> str:
    return _line(cpu, ts, f"kmalloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req=64 bytes_alloc=64 "
                 "gfp_flags=GFP_KERNEL")


def _kfree(cpu: int, ts: int, ptr: int) -> str:
    return _line(cpu, ts, f"kfree: call_site=f+0x1/0x2 ptr={ptr:016x}")


def _ptr(i: int) -> int:
    return BASE + 64 * i


def _allocs() -> str:
    return "".join(_kmalloc(0, 1 + i, _ptr(i)) for i in range(N))


def _prefix() -> tuple[str, int]:
    """CPU 0 allocates N objects, then frees objects until its array is full (kmalloc-64's holds
    120); the next free flushes the oldest 60 to the shared array.  Also: how many it freed."""
    rep = _replay(_allocs())
    cachep = rep.k.kmalloc_slab(64, 0)
    assert cachep is not None
    ac = cachep.cpu_cache[0]
    n = ac.limit - len(ac.entry)
    return _allocs() + "".join(_kfree(0, 200 + i, _ptr(i)) for i in range(n)), n


def _replay(text: str) -> Replayer:
    rep = Replayer(MachineConfig.build(cpus=2), None, ReplayOptions())
    rep.run(iter_events(io.StringIO(text)), clock="counter")
    return rep


def _race(refill_first: bool, free_ptr: int) -> str:
    """CPU 0's last free flushes; CPU 1 refills and allocates; CPU 0's free event comes last.  The
    kernel's CPU 1 got an object of the batch CPU 0 flushed to the shared array."""
    flush = _line(0, 400, "cache_flusharray <-___cache_free", "d...")
    refill = _line(1, 399 if refill_first else 401, "cache_alloc_refill <-__kmalloc", "d...")
    lines = [refill, flush] if refill_first else [flush, refill]
    return "".join(lines) + _kmalloc(1, 402, _ptr(59)) + _kfree(0, 403, free_ptr)


def _freed_objects(n: int) -> set[int]:
    first = _replay(_allocs())
    return {first.kmap[_ptr(i)] for i in range(n)}


def test_free_whose_flush_came_first_is_replayed_before_the_other_cpus_allocation() -> None:
    prefix, n = _prefix()
    rep = _replay(prefix + _race(False, _ptr(n)))
    assert rep.summary.followed[FOLLOWED] == 1
    # CPU 1 took an object the flush put on the shared array
    assert rep.kmap[_ptr(59)] in _freed_objects(n)


def test_refill_before_the_flush_keeps_the_trace_order() -> None:
    prefix, n = _prefix()
    rep = _replay(prefix + _race(True, _ptr(n)))
    assert not rep.summary.followed[FOLLOWED]
    assert rep.kmap[_ptr(59)] not in _freed_objects(n)


def test_free_of_another_cache_keeps_the_trace_order() -> None:
    text = _prefix()[0] + _race(False, 0).replace(
        f"kfree: call_site=f+0x1/0x2 ptr={0:016x}",
        "kmem_cache_free: call_site=f+0x1/0x2 ptr=ffff888012350000 name=kmalloc-128")
    rep = _replay(text)
    assert not rep.summary.followed[FOLLOWED]
