"""Interrupts between an allocation and its trace event (trace/replay/reorder.py: IrqWindow, IrqRefillHold)."""

from __future__ import annotations

import io

from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Followed, Replayer, ReplayOptions

FOLLOWED = Followed.ALLOC_BEFORE_IRQ


def _line(ts: int, flags: str, payload: str, comm: str = "task-7") -> str:
    return f"          {comm}      [000] {flags}     {ts}: {payload}\n"


def _kmalloc(ts: int, ptr: int, flags: str = "....") -> str:
    return _line(ts, flags, f"kmalloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req=64 bytes_alloc=64 "
                 "gfp_flags=GFP_KERNEL")


def _kfree(ts: int, ptr: int, flags: str = "..s.") -> str:
    return _line(ts, flags, f"kfree: call_site=rcu_core+0x1/0x2 ptr={ptr:016x}")


P1, P2, P3 = 0xFFFF888012345000, 0xFFFF888012345040, 0xFFFF888012345080


def _replay(text: str) -> Replayer:
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    rep.run(iter_events(io.StringIO(text)), clock="counter")
    return rep


def test_parser_marks_lines_written_in_interrupt_context() -> None:
    text = (_kmalloc(1, P1) + _kfree(2, P1, "..s.") + _kfree(3, P2, "d.h.") + _kfree(4, P3, "d.H1")
            + _kfree(5, P1, "d...") + _kfree(6, P2, "..s.")  # the last: a cached prefix
            + _line(7, "d.s.", "cache_flusharray <-___cache_free")
            + "            task-7     [000]     8: kfree: call_site=f+0x1/0x2 ptr=ffff888012345000\n")
    evs = list(iter_events(io.StringIO(text)))
    assert [bool(e.irq) for e in evs] == [False, True, True, True, False, True, True, False]


def test_allocation_interrupted_before_its_event_runs_before_the_interrupt() -> None:
    # The task's allocation of P3 took the array's top object before the softirq freed P1 onto the
    # array: had it come after, it would have got P1 back.  So the model must take the object below P1.
    first = _replay(_kmalloc(1, P1))
    m1 = first.kmap[P1]
    rep = _replay(_kmalloc(1, P1) + _kmalloc(2, P2) + _kfree(3, P1) + _kmalloc(4, P3) + _kmalloc(5, P1))
    assert rep.summary.followed[FOLLOWED] == 1
    assert rep.kmap[P1] == m1  # the kernel's reuse of P1 is the model's reuse of P1's object
    assert rep.kmap[P3] != m1


def test_allocation_that_got_the_interrupts_object_stays_after_it() -> None:
    first = _replay(_kmalloc(1, P1))
    m1 = first.kmap[P1]
    rep = _replay(_kmalloc(1, P1) + _kmalloc(2, P2) + _kfree(3, P1) + _kmalloc(4, P1))
    assert not rep.summary.followed[FOLLOWED]
    assert rep.kmap[P1] == m1


def test_without_irq_info_the_trace_order_is_kept() -> None:
    text = (_kmalloc(1, P1) + _kmalloc(2, P2) + _kfree(3, P1, "....") + _kmalloc(4, P3))
    rep = _replay(text)
    assert not rep.summary.followed[FOLLOWED]
