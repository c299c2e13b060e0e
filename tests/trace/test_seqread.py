"""A /proc/slabinfo snapshot is shown a page per read(2), as seq_read_iter fills its buffer (seqread.py)."""

from __future__ import annotations

import io
from pathlib import Path

from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Replayer, ReplayOptions
from kslab.trace.replay.seqread import PAGE_SIZE, fill_page, slabinfo_records

HEADER = ("slabinfo - version: 2.1\n"
          "# name            <active_objs> <num_objs> ... : slabdata <active_slabs> <num_slabs> <sharedavail>\n")


def test_records_put_the_header_with_the_first_cache() -> None:
    text = HEADER + "a 1\n" + "b 2\n" + "c 3\n"
    assert slabinfo_records(text) == [HEADER + "a 1\n", "b 2\n", "c 3\n"]
    assert slabinfo_records(HEADER) == [HEADER]


def test_a_page_takes_whole_records_that_leave_the_buffer_short_of_full() -> None:
    """seq_printf overflows when the text reaches the buffer's end: records of 1000 bytes, 4 fit in 4096
    (4000 < 4096); records of 1024 bytes, only 3 (4096 is not < 4096).  A record never splits."""
    assert fill_page(["x" * 999 + "\n"] * 10, 0) == 4
    assert fill_page(["x" * 1023 + "\n"] * 10, 0) == 3
    assert fill_page(["x" * 1023 + "\n"] * 10, 9) == 10
    assert fill_page(["x" * 5000] * 2, 0) == 1  # at least one (seq_read_iter grows its buffer for it)


def line(task: str, ts: int, payload: str) -> str:
    return f"          {task}  [000] ....     {ts}: {payload}\n"


def kmalloc(ts: int, ptr: int, size: int, task: str = "work-9") -> str:
    return line(task, ts, f"kmalloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req={size} bytes_alloc={size} "
                          f"gfp_flags=GFP_KERNEL")


def alloc(ts: int, ptr: int, name: str) -> str:
    return line("work-9", ts, f"kmem_cache_alloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req=700 "
                              f"bytes_alloc=704 gfp_flags=GFP_KERNEL name={name}")


def page_alloc(ts: int, gfp: str, task: str = "cat-50") -> str:
    return line(task, ts, f"mm_page_alloc: page=ffffea0000057170 pfn=6370 order=0 migratetype=1 gfp_flags={gfp}")


BUF = 0xFFFF888012800000


def read_trace(extra_before_write: str, page_gfp: str = "GFP_HIGHUSER_MOVABLE", reader: str = "cat-50") -> str:
    """A reader's read of /proc/slabinfo while another task allocates: 3 objects of the newest cache (its
    line is on the first page) and 3 of kmalloc-96 (near the end) after the reader's buffer allocation and
    before its first write; then the reader's writes, its last read and its buffer's free."""
    text = line("init-1", 1, "tracing_mark_write: snapshot s begin")
    text += kmalloc(2, BUF, 4096, task="cat-50").replace("f+0x1/0x2", "seq_read_iter+0x35d/0x420")
    text += extra_before_write
    for i in range(3):
        text += alloc(10 + i, 0xFFFF888012900000 + 0x400 * i, "fresh")
        text += kmalloc(20 + i, 0xFFFF888012A00000 + 0x80 * i, 96)
    text += "".join(page_alloc(30 + i, page_gfp, task=reader) for i in range(4))
    text += line("cat-50", 40, f"kfree: call_site=seq_release+0x15/0x30 ptr={BUF:016x}")
    return text


def snapshot_of(tmp_path: Path, trace: str) -> dict[str, int]:
    rep = Replayer(MachineConfig.build(cpus=1), None,
                   ReplayOptions(snapshot_on=r"snapshot (\S+) begin", out=str(tmp_path)))
    rep.start_boot([])
    fresh = rep.k.kmem_cache_create_unmerged("fresh", 700)
    assert fresh is not None
    full = rep.k.slabinfo()
    names = [ln.split()[0] for ln in full.splitlines()[2:]]
    assert names[0] == "fresh" and names.index("kmalloc-96") > len(names) - 10 and len(full) > PAGE_SIZE
    rep.run(iter_events(io.StringIO(trace)), clock="counter")
    rep.k.check()
    text = (tmp_path / "slabinfo.s").read_text()
    assert [ln.split()[0] for ln in text.splitlines()[2:]] == names  # every cache once, in the kernel's order
    return {ln.split()[0]: int(ln.split()[1]) for ln in text.splitlines()[2:]}


def test_later_pages_show_the_caches_as_they_are_at_the_later_reads(tmp_path: Path) -> None:
    """The first page (the newest caches) is shown at the reader's buffer allocation: the 3 objects of
    'fresh' allocated after it are not in it.  kmalloc-96's line is on a later page, shown after the
    reader's first write (its page-cache page): its 3 objects are."""
    shown = snapshot_of(tmp_path, read_trace(""))
    assert shown["fresh"] == 0
    assert shown["kmalloc-96"] >= 3


def test_without_writes_the_rest_is_shown_at_the_buffer_free(tmp_path: Path) -> None:
    """Pages zeroed for the reader (__GFP_ZERO: its own anonymous memory) or another task's page-cache
    pages are not the reader's writes: the later pages are shown at the buffer's free, which is after the
    allocations too; 'fresh' is still shown as it was at the first read."""
    for gfp, reader in (("GFP_HIGHUSER_MOVABLE|__GFP_ZERO", "cat-50"), ("GFP_HIGHUSER_MOVABLE", "other-51")):
        shown = snapshot_of(tmp_path, read_trace("", page_gfp=gfp, reader=reader))
        assert shown["fresh"] == 0 and shown["kmalloc-96"] >= 3


def test_a_later_page_is_shown_before_the_allocations_that_follow_its_read(tmp_path: Path) -> None:
    """All of the reader's writes come right after its buffer allocation: every page is shown before the
    other task's allocations, so neither cache shows them."""
    writes = "".join(page_alloc(3 + i, "GFP_HIGHUSER_MOVABLE") for i in range(4))
    shown = snapshot_of(tmp_path, read_trace(writes))
    before = snapshot_of(tmp_path / "none", read_trace("", page_gfp="GFP_KERNEL"))  # no writes at all
    assert shown["fresh"] == 0
    assert shown["kmalloc-96"] < before["kmalloc-96"]  # the refill for the 3 objects is not shown
