"""Allocations whose order in the kernel the trace cannot tell are counted (ReplaySummary.order_unknown)."""

from __future__ import annotations

import io

import pytest

from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import OrderUnknown, Replayer


def alloc(cpu: int, pid: int, ts: int, ptr: int, name: str) -> str:
    size = 64 if name == "one" else 256
    return (f"          t-{pid}   [{cpu:03d}] ....     2.{ts:06d}: kmem_cache_alloc: call_site=f+0x1/0x2 "
            f"ptr={ptr:x} bytes_req={size} bytes_alloc={size} gfp_flags=GFP_KERNEL name={name}\n")


def refill(cpu: int, pid: int, ts: int) -> str:
    return f"          t-{pid}   [{cpu:03d}] ....     2.{ts:06d}: cache_alloc_refill <-kmem_cache_alloc\n"


def replay(text: str, cpus: int = 2, nodes: int = 1) -> tuple[Replayer, int]:
    rep = Replayer(MachineConfig.build(cpus=cpus, nodes=nodes))
    rep.start_boot([])
    for name, size in (("one", 64), ("two", 256)):  # two sizes: the caches must not merge
        rep.k.kmem_cache_create(name, size)
    for ev in iter_events(io.StringIO(text)):
        rep.feed(ev)
    rep.finish()
    rep.k.check()
    return rep, rep.summary.order_unknown[OrderUnknown.REFILLS_OVERLAPPED]


@pytest.mark.parametrize("overlap", [True, False])
def test_two_refills_of_one_cache_at_once_are_counted(overlap: bool) -> None:
    """CPU 1's cache_alloc_refill begins before CPU 0's allocation returned: both ran for the node's
    list_lock at the same time, so which got the first objects is unknown; both allocations count.  One
    after the other (CPU 0's allocation before CPU 1's refill line), the order is known: none count."""
    a0, a1 = 0xFFFF888012340000, 0xFFFF888012350000
    if overlap:
        text = refill(0, 101, 1) + refill(1, 102, 2) + alloc(0, 101, 3, a0, "one") + alloc(1, 102, 4, a1, "one")
    else:
        text = refill(0, 101, 1) + alloc(0, 101, 2, a0, "one") + refill(1, 102, 3) + alloc(1, 102, 4, a1, "one")
    rep, n = replay(text)
    assert n == (2 if overlap else 0)
    assert rep.summary.applied["kmem_cache_alloc"] == 2


def test_overlapping_refills_of_two_caches_are_not_counted() -> None:
    """Two caches have two list_locks: refills of different caches at once do not race."""
    text = (refill(0, 101, 1) + refill(1, 102, 2) + alloc(0, 101, 3, 0xFFFF888012340000, "one")
            + alloc(1, 102, 4, 0xFFFF888012350000, "two"))
    assert replay(text)[1] == 0


def test_overlapping_refills_on_two_nodes_are_not_counted() -> None:
    """CPUs of different nodes refill from different kmem_cache_node lists."""
    text = (refill(0, 101, 1) + refill(1, 102, 2) + alloc(0, 101, 3, 0xFFFF888012340000, "one")
            + alloc(1, 102, 4, 0xFFFF888012350000, "one"))
    assert replay(text, cpus=2, nodes=2)[1] == 0


def test_each_allocation_is_counted_once() -> None:
    """Three CPUs refill at once: three allocations, each counted once however many others it overlapped."""
    ptrs = (0xFFFF888012340000, 0xFFFF888012350000, 0xFFFF888012360000)
    text = (refill(0, 101, 1) + refill(1, 102, 2) + refill(2, 103, 3) + alloc(0, 101, 4, ptrs[0], "one")
            + alloc(1, 102, 5, ptrs[1], "one") + alloc(2, 103, 6, ptrs[2], "one"))
    assert replay(text, cpus=3)[1] == 3
