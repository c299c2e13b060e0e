"""Replay of real 5.10 trace excerpts: exact /proc/slabinfo predictions and the replay's accounting."""

from __future__ import annotations

import csv
import lzma
from pathlib import Path

import pytest

from kslab.cli import main
from kslab.manifest import read_manifest
from kslab.mm.config import MachineConfig
from kslab.trace.events import KFREE, KMEM_CACHE_FREE, TraceEvent
from kslab.trace.ftrace import ParseStats, iter_events
from kslab.trace.replay import Followed, Replayer, ReplayOptions, site_function
from kslab.trace.slabinfo_parse import parse_slabinfo

DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"
COUNTS = ("active_objs", "num_objs", "active_slabs", "num_slabs")


def replay_bundled(tmp_path: Path, **opts: object) -> Replayer:
    options = ReplayOptions(start_slabinfo=str(DATA / "oracle-R1-slabinfo.0-start"), sync_on="snapshot 0-start begin",
                            snapshot_on=r"snapshot (\S+) begin", out=str(tmp_path), ptr_map=str(tmp_path / "p.csv"),
                            **opts)  # type: ignore[arg-type]
    rep = Replayer(MachineConfig.build(cpus=1), read_manifest(DATA / "oracle-R1-caches.log.xz"), options)
    rep.run(iter_events(str(DATA / "oracle-R1-excerpt.txt.xz")))
    return rep


def test_bundled_excerpt_predicts_the_kernels_slabinfo_exactly(tmp_path: Path) -> None:
    rep = replay_bundled(tmp_path)
    kernel = parse_slabinfo((DATA / "oracle-R1-slabinfo.1-files").read_text())
    model = parse_slabinfo((tmp_path / "slabinfo.1-files").read_text())
    bad = [(name, c, model.get(name, {}).get(c), v[c]) for name, v in kernel.items() for c in COUNTS
           if model.get(name, {}).get(c) != v[c]]
    assert bad == []
    assert set(model) == set(kernel)
    assert rep.summary.sync["caches"] == len(kernel)


def test_sync_matches_the_start_slabinfo(tmp_path: Path) -> None:
    # a snapshot at the same marker as the sync shows the state the sync produced
    rep = replay_bundled(tmp_path)
    kernel = parse_slabinfo((DATA / "oracle-R1-slabinfo.0-start").read_text())
    model = parse_slabinfo((tmp_path / "slabinfo.0-start").read_text())
    for name, v in kernel.items():
        for c in COUNTS:
            assert model[name][c] == v[c], (name, c)
    rep.check()


def test_every_event_is_applied_or_skipped_with_a_reason(tmp_path: Path) -> None:
    stats = ParseStats()
    options = ReplayOptions(start_slabinfo=str(DATA / "oracle-R1-slabinfo.0-start"), sync_on="snapshot 0-start begin")
    rep = Replayer(MachineConfig.build(cpus=1), read_manifest(DATA / "oracle-R1-caches.log.xz"), options)
    s = rep.run(iter_events(str(DATA / "oracle-R1-excerpt.txt.xz"), stats=stats))
    assert stats.consistent
    assert s.events == stats.events
    assert s.accounted() == s.events


def test_reuse_follows_the_kernel(tmp_path: Path) -> None:
    replay_bundled(tmp_path)
    k2m: dict[str, str] = {}
    m2k: dict[str, str] = {}
    good = total = 0
    with (tmp_path / "p.csv").open() as f:
        for row in csv.reader(f):
            if not row[0].isdigit():
                continue
            kp, mp = row[1], row[2]
            total += 1
            if (kp in k2m or mp in m2k) and (k2m.get(kp) != mp or m2k.get(mp) != kp):
                k2m.pop(m2k.pop(mp, ""), None)
                m2k.pop(k2m.pop(kp, ""), None)
            else:
                good += 1
            k2m[kp], m2k[mp] = mp, kp
    assert total > 11000
    assert good / total >= 0.98  # 98.5% measured: the excerpt starts mid-run, array contents unknown


def test_what_if_more_cpus_changes_the_tunables_not_the_accounting(tmp_path: Path) -> None:
    options = ReplayOptions(start_slabinfo=str(DATA / "oracle-R1-slabinfo.0-start"), sync_on="snapshot 0-start begin")
    rep = Replayer(MachineConfig.build(cpus=4, nodes=2), read_manifest(DATA / "oracle-R1-caches.log.xz"), options)
    s = rep.run(iter_events(str(DATA / "oracle-R1-excerpt.txt.xz")))
    assert s.accounted() == s.events
    rep.check()
    assert rep.k.find_cache("dentry").shared == 8  # SMP: shared arrays exist


@pytest.mark.parametrize("site,func", [("kfree+0x10/0x20", "kfree"), ("foo.constprop.0+0x5/0x9", "foo"),
                                       ("ext4_foo+0x10/0x20 [ext4]", "ext4_foo"),
                                       ("ffffffff81234567", "ffffffff81234567")])
def test_site_function(site: str, func: str) -> None:
    assert site_function(site) == func


def test_cli_replay_demo_runs_and_compares(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "484/484 cells equal (100.00%)" in out


def test_cli_replay_bad_trace_line_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    with lzma.open(DATA / "oracle-R1-excerpt.txt.xz", "rt") as f:
        head = f.read().splitlines()[:40]
    head.insert(20, "            init-1       [000] ....     1.5: kmalloc: call_site=x+0x1/0x2 ptr=zz bytes_req=")
    bad.write_text("\n".join(head) + "\n")
    assert main(["replay", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kslab: error: ") and "bad.txt:21" in err[0]
    assert main(["replay", str(bad), "--quiet", "--skip-bad", "--no-slabinfo"]) == 0


def test_explain_an_event_of_the_bundled_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--trace", "bundled", "--line", "1500"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("event 1489 (line 1500) on CPU 0: kmem_cache_alloc: call_site=getname_flags")
    assert "____cache_alloc: ac->avail 1 > 0" in out
    assert main(["explain", "--trace", "bundled", "--line", "1500", "--lang", "zh"]) == 0
    assert "第 1489 个事件" in capsys.readouterr().out
    assert main(["explain", "--trace", "bundled", "--event", "99999999"]) == 1


def test_explain_a_cache_reap_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A cache_reap line waits for the lines of its run (trace/reapwatch.py); explaining it still runs it."""
    trace = str(Path(__file__).parent / "data" / "oracle-R1-global.txt")
    assert main(["explain", "--trace", trace, "--line", "58"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("event 47 (line 58) on CPU 0: cache_reap <-process_one_work\n")
    assert "cache_reap on CPU 0 (node 0) at jiffies 1744" in out
    assert "drain_array: kmalloc-64:" in out


def test_slabinfo_write_runs_where_the_kernels_did() -> None:
    """The marker comes after the kernel tuned the cache (function tracer: slabinfo_write); the
    events in between must see the new tunables, as in the kernel."""
    import io  # noqa: PLC0415
    text = (
        "            echo-5       [000] ....     1.000000: slabinfo_write <-proc_reg_write\n"
        "             cat-6       [000] ....     1.000100: kmalloc: call_site=x+0x1/0x2 ptr=ffff888012345000 "
        "bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL\n"
        "            init-1       [000] ....     1.000200: tracing_mark_write: oracle: "
        "retune written: kmalloc-64 60 30 4\n"
    )
    rep = Replayer(MachineConfig.build(cpus=1), None,
                   ReplayOptions(actions=[(r"retune written: (.*)", r"slabinfo-write \1")]))
    s = rep.run(iter_events(io.StringIO(text)))
    c = rep.k.find_cache("kmalloc-64")
    assert (c.limit, c.batchcount, c.shared) == (60, 30, 4)
    # tuned before the kmalloc: its refill filled the new, untouched array with 16 (BATCHREFILL_LIMIT)
    assert len(c.cpu_cache[0].entry) == 15
    assert s.accounted() == s.events == 3
    assert any("applied where the kernel's slabinfo_write ran" in n for n in s.notes)
    assert len(s.actions) == 1


def _interrupted_refill_trace(refill: bool) -> str:
    task = "               t-1       [000] {} 1.{:06d}: "
    lines = [
        ("d...", "cache_alloc_refill <-__kmalloc"),
        ("....", "kmalloc: call_site=x+0x1/0x2 ptr=ffff888012345000 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL"),
        ("....", "kmalloc: call_site=x+0x1/0x2 ptr=ffff888012345040 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL"),
    ]
    if refill:
        lines += [("d...", "cache_alloc_refill <-__kmalloc"), ("d...", "cache_grow_begin <-cache_alloc_refill"),
                  ("d...", "cache_grow_end <-cache_alloc_refill")]
    lines += [
        # an interrupt after the allocation returned: its softirq's RCU callback frees the second object
        ("..s.", "kfree: call_site=rcu_core+0x1/0x2 ptr=ffff888012345040"),
        ("....", "kmalloc: call_site=x+0x1/0x2 ptr=ffff888012346000 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL"),
    ]
    return "".join(task.format(flags, i) + text + "\n" for i, (flags, text) in enumerate(lines))


@pytest.mark.parametrize("refill", [True, False])
def test_allocation_shown_after_an_interrupt_is_replayed_before_it(refill: bool) -> None:
    """An allocation's event is written after interrupts are enabled again: a softirq taken in between
    shows its events first.  When the function tracer shows the allocation's refill, the object was
    taken before them, so the replay allocates first (and the interrupt's free cannot hand its object
    to the allocation); without that evidence the events keep their order."""
    import io  # noqa: PLC0415
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    rep.fast_path = False  # (the spy below sees the general path)
    freed: list[int] = []
    orig = rep.applier.apply

    def spy(ev: TraceEvent) -> None:
        if ev.kind in (KFREE, KMEM_CACHE_FREE):
            freed.append(rep.kmap[0xFFFF888012345040])
        orig(ev)

    rep.applier.apply = spy  # type: ignore[method-assign]
    s = rep.run(iter_events(io.StringIO(_interrupted_refill_trace(refill))))
    assert s.accounted() == s.events
    second = rep.kmap[0xFFFF888012346000]
    # the kernel's allocation did not return the object the interrupt freed: it came first.  With the
    # refill shown, either reading moves it (the object tells first); without, the object alone does.
    assert second != freed[0]
    moved = s.followed[Followed.ALLOC_AFTER_IRQ] + s.followed[Followed.ALLOC_BEFORE_IRQ]
    assert moved == 1
    if not refill:
        assert s.followed[Followed.ALLOC_BEFORE_IRQ] == 1


def test_sync_placeholders_stay_out_of_slabs_grown_under_the_trace() -> None:
    """The kernel's objects of unknown identity are in slabs older than the trace, or in slabs of their
    own: a slab the model grew for a traced allocation has its free slots free in the kernel too."""
    import io  # noqa: PLC0415
    trace = ("  a-1 [000] ....  0.1: kmem_cache_alloc: call_site=f+0x1/0x2 ptr=ffff888012e27420 bytes_req=48 "
             "bytes_alloc=48 gfp_flags=GFP_KERNEL name=foo\n")
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    rep.run(iter_events(io.StringIO(trace)), clock="counter")
    foo = rep.k.find_cache("foo")
    assert foo is not None
    traced = rep.k.page_of(rep.kmap[0xFFFF888012E27420])
    assert traced is not None
    # a trace that starts later: the model's slab stands for one the kernel had before the trace
    assert {rep.k.page_of(p) for p in rep.placeholders.make(foo, 2, sync=True)} == {traced}
    rep.shows_boot = True  # as for a trace that shows the boot (see replay.boot.Boot.start)
    made = rep.placeholders.make(foo, 3, sync=True)
    assert len(made) == 3 and all(rep.k.page_of(p) is not traced for p in made)
    # the three share a slab of their own
    assert len({rep.k.page_of(p) for p in made}) == 1
    rep.check()
