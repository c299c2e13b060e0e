"""kslab ask (report.ask): the answers follow mm/slab.c's rules."""

from __future__ import annotations

import io
import itertools

import pytest

from kslab.cli import main
from kslab.mm.config import MachineConfig
from kslab.mm.gfp import GFP_KERNEL
from kslab.mm.kernel import Kernel
from kslab.mm.slab.free import kfree
from kslab.mm.slab.kmalloc import kmalloc
from kslab.report import ask
from kslab.trace.ftrace import iter_events


def _k(**opts: object) -> Kernel:
    return Kernel(MachineConfig.build(**opts))  # type: ignore[arg-type]


def test_holder_names_every_place_an_object_can_be() -> None:
    k = _k()
    a, b = kmalloc(k, 100, GFP_KERNEL), kmalloc(k, 100, GFP_KERNEL)
    kfree(k, a)
    ha, hb = ask.holder(k, a), ask.holder(k, b + 5)
    assert (ha.where, ha.cpu, ha.cache) == (ask.Where.CPU_ARRAY, 0, "kmalloc-128")
    assert (hb.where, hb.offset, hb.index) == (ask.Where.CALLER, 5, (b - k.page_of(b).s_mem) // 128)  # type: ignore[union-attr]
    # a slot above page->active of a partial slab: on the slab's freelist
    c, page = next((c, p) for c in k.slab_caches for n in c.node if n is not None for p in n.slabs_partial)
    assert page.fl is not None
    h = ask.holder(k, page.s_mem + page.fl[page.active] * c.size)
    assert (h.where, h.slab_list, h.cache) == (ask.Where.SLAB, "partial", c.name)
    assert ask.holder(k, 0x1000).where is ask.Where.NOT_SLAB


def test_next_objects_pop_the_array_then_refill_then_grow() -> None:
    k = _k()
    c = k.find_cache("kmalloc-256")
    assert c is not None
    ac = c.cpu_cache[0]
    n = c.node[0]
    assert n is not None
    cached = list(reversed(ac.entry))  # ____cache_alloc pops ac->entry LIFO
    shared = len(n.shared.entry) if n.shared is not None else 0
    want_before = len(ac.entry) + shared + n.free_objects  # then cache_alloc_refill finds nothing: cache_grow
    a = ask.next_objects(k, c, 0, max(1, len(cached)))
    assert [o.addr for o in a.objects[:len(cached)]] == cached
    assert a.before_fresh == want_before


def test_fresh_objects_follow_random_seq_from_an_unknown_start() -> None:
    k = _k(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=5)
    c = k.find_cache("kmalloc-512")
    assert c is not None and c.random_seq is not None
    a = ask.next_objects(k, c, 0, 200)
    assert a.seq == c.random_seq and abs(sum(a.start_p) - 1) == 0
    fresh = [o for o in a.objects if o.fresh == 1]
    assert fresh and all(o.random for o in fresh)
    page = k.mem_map.pfn_to_page(fresh[0].pfn)
    assert page is not None
    by_slot = {o.slot: (o.addr - page.s_mem) // c.size for o in fresh}
    seq, num = c.random_seq, c.num
    pos = [seq.index(by_slot[s]) for s in sorted(by_slot)]
    # consecutive slots are consecutive entries of random_seq (read from the start, wrapping around)
    assert all((q - p) % num == 1 for p, q in itertools.pairwise(pos))


@pytest.mark.parametrize("size", [512, 4096])
def test_release_is_when_the_models_own_reap_timers_say(size: int) -> None:
    """until_release lets the model's reap timers fire (slab_online_cpu's, re-armed after each cache_reap):
    the same frees on an identical machine leave the slab alive one jiffy before the answer, and gone at it."""
    def machine() -> tuple[Kernel, list[int]]:
        k = _k(cpus=2)
        return k, [kmalloc(k, size, GFP_KERNEL) for _ in range(60)]
    k1, objs1 = machine()
    r = ask.until_release(k1, objs1[-1])
    if r.released_by_free:
        pytest.skip("free_block destroyed the slab at once")
    assert r.reap_seconds is not None and r.timers == 2 and r.reap_passes >= 1
    k2, objs2 = machine()
    assert objs1 == objs2
    start = k2.jiffies
    for o in r.frees:
        kfree(k2, o)
    when = start + round(r.reap_seconds * k2.config.HZ)
    k2.advance(when - 1)
    page = k2.mem_map.pfn_to_page(r.pfn)
    assert page is not None and page.fl is not None and page.slab_cache is not None
    k2.advance(when)
    page = k2.mem_map.pfn_to_page(r.pfn)
    assert page is None or page.slab_cache is None


def test_release_without_reap_timers_never_comes() -> None:
    k = _k()
    objs = [kmalloc(k, 512, GFP_KERNEL) for _ in range(60)]
    k.reap_work.timers.clear()  # no CPU's reap work armed
    r = ask.until_release(k, objs[-1])
    assert r.released_by_free or (r.timers == 0 and r.reap_seconds is None and r.reap_passes == 0)


@pytest.mark.parametrize("size", [512, 4096])
def test_release_follows_free_limit_and_cache_reap(size: int) -> None:
    k = _k()
    objs = [kmalloc(k, size, GFP_KERNEL) for _ in range(60)]
    c = k.kmalloc_slab(size, GFP_KERNEL)
    assert c is not None
    r = ask.until_release(k, objs[-1])
    assert r.tofree == (r.free_limit + 5 * c.num - 1) // (5 * c.num)
    assert r.released_by_free != (r.reap_seconds is not None)
    assert not any(ask.holder(k, o).where is ask.Where.CALLER for o in objs[-1:])
    page = k.mem_map.pfn_to_page(r.pfn)
    assert page is None or page.slab_cache is not c  # back to the page allocator
    k.check()


def test_slot_history_pairs_a_free_with_the_next_allocation() -> None:
    text = ("# tracer: nop\n"
            "  t-1 [000] .... 1: kmalloc: call_site=a+0x1/0x2 ptr=ffff888001000000 bytes_req=8 bytes_alloc=8 "
            "gfp_flags=GFP_KERNEL\n"
            "  t-1 [000] .... 2: kfree: call_site=b+0x1/0x2 ptr=ffff888001000000\n"
            "  t-1 [000] .... 3: kmem_cache_alloc: call_site=c+0x1/0x2 ptr=ffff888001000000 bytes_req=8 "
            "bytes_alloc=8 gfp_flags=GFP_KERNEL name=foo\n"
            "  t-1 [000] .... 4: kfree: call_site=b+0x1/0x2 ptr=ffff888001000000\n")
    h = ask.SlotHistory()
    for ev in iter_events(io.StringIO(text)):
        h.observe(ev)
    pairs = h.after_free(0xFFFF888001000000)
    got = [(f.line, a.line if a else None, a.cache if a else None) for f, a in pairs]
    assert got == [(3, 4, "foo"), (5, None, None)]


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--script", "kmalloc x", "--holder", "#1"]) != 0
    assert "--script operation 1" in capsys.readouterr().err
    assert main(["ask", "--script", "kmalloc 8", "--holder", "#2"]) != 0
    assert "#I names" in capsys.readouterr().err
    assert main(["ask", "--next", "nosuch"]) != 0
    assert "no such cache" in capsys.readouterr().err


def test_ask_in_a_replay_of_a_real_trace(capsys: pytest.CaptureFixture[str]) -> None:
    # capture F2's first 30000 lines (FREELIST_RANDOM kernel, 2 CPUs): the answers at a line of the trace
    from pathlib import Path  # noqa: PLC0415
    data = Path(__file__).resolve().parents[1] / "trace" / "data"
    base = [str(data / "oracle-F2-head.txt.xz"), "--cpus", "2", "--freelist-random", "--caches",
            str(data / "oracle-F2-caches.manifest.xz"), "-q"]
    # freed at line 3026 (kfree), taken again at line 3034 (the trace's lines, counted from 1)
    assert main(["ask", *base, "--reuse", "0xffff88800285ac00"]) == 0
    out = capsys.readouterr().out
    assert "freed at line 3026" in out and "taken at line 3034" in out and "the model's object 0x" in out
    assert main(["ask", *base, "--at-line", "20000", "--next", "kmalloc-64", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "allocation(s) before the first from a fresh slab" in out
    assert main(["ask", *base, "--at-line", "3033", "--holder", "0xffff88800285ac00"]) == 0
    assert "(the model's object for the kernel's 0xffff88800285ac00): cache kmalloc-32" in capsys.readouterr().out


def _head_args() -> list[str]:
    from pathlib import Path  # noqa: PLC0415
    data = Path(__file__).resolve().parents[1] / "trace" / "data"
    return [str(data / "oracle-F2-head.txt.xz"), "--cpus", "2", "--freelist-random", "--caches",
            str(data / "oracle-F2-caches.manifest.xz"), "-q"]


@pytest.mark.parametrize(("line", "kernel", "model"), [
    (3025, "allocated at line 3025", "allocated (a caller holds it)"),
    (3026, "freed at line 3026", "a per-CPU array (free, cached) of CPU 0"),
    (3033, "freed at line 3026", "a per-CPU array (free, cached) of CPU 0"),
    (3034, "allocated at line 3034", "allocated (a caller holds it)")])
def test_holder_in_a_replay_agrees_with_the_trace(capsys: pytest.CaptureFixture[str], line: int, kernel: str,
                                                  model: str) -> None:
    """F2's 0xffff88800285ac00: kmalloc'd at line 3025, kfree'd at 3026 (into CPU 0's array: ___cache_free),
    kmalloc'd again at 3034.  Stopping the replay in between used to let the model finish its boot (the
    CPUs and caches the trace had not reached yet), whose own allocations took the object the kernel held
    free: --holder then called a freed object allocated."""
    assert main(["ask", *_head_args(), "--at-line", str(line), "--holder", "0xffff88800285ac00"]) == 0
    out = capsys.readouterr().out
    assert f"held by: {model}" in out and f"in the kernel: {kernel}" in out and "disagrees" not in out


def test_holder_in_a_replay_every_object_agrees_with_the_trace() -> None:
    """At a line of the trace, every kernel address the trace showed: the model's object for it is held by
    a caller exactly when the kernel's last event for it was an allocation (or the model has handed it out
    again, for another kernel address: a reuse the model made differently, which --holder says)."""
    from kslab.cli import ask as cli_ask  # noqa: PLC0415
    from kslab.cli import build_parser  # noqa: PLC0415
    from kslab.cli.replay import make_replayer, run_replay  # noqa: PLC0415
    args = build_parser().parse_args(["ask", *_head_args(), "--at-line", "3026", "--holder", "0"])
    rep = make_replayer(args)
    rep.fast_path = False
    rep.complete_boot = False
    hist, view = ask.SlotHistory(), ask.KernelView()
    kmap: dict[int, int] = {}
    orig = rep.applier.record_alloc

    def record(ev, mptr, cachep):  # type: ignore[no-untyped-def]
        orig(ev, mptr, cachep)
        kmap[ev.ptr] = mptr
        view.record(rep.k, ev.ptr, mptr, cachep)
    rep.applier.record_alloc = record  # type: ignore[method-assign]
    run_replay(rep, args, wrap=cli_ask._stop(args, hist, False))
    checked = 0
    for kptr, mptr in kmap.items():
        st = hist.state_at(kptr, hist.stop_line)
        h = ask.holder(rep.k, mptr)
        if st is None or h.where is ask.Where.NOT_SLAB or view.m2k.get(mptr) != kptr:
            continue
        assert st.alloc == (h.where is ask.Where.CALLER), hex(kptr)
        checked += 1
    assert checked > 90


def test_next_in_a_replay_gives_the_kernels_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    """--next in a replay: each address is the kernel's, through the pointer map (the kernel's object the
    model's stood for, or the same offset of the kernel slab its slab stands for); a slab not grown yet has
    none."""
    import re  # noqa: PLC0415
    assert main(["ask", *_head_args(), "--at-line", "20000", "--next", "kmalloc-64", "-n", "60"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if re.match(r"\s+\d+\s", ln)]
    assert len(rows) == 60
    for ln in rows:
        m = re.match(r"\s+\d+\s+(0x[0-9a-f]+) \((.*?); the model's (0x[0-9a-f]+), pfn", ln)
        if m is None:
            assert "fresh slab" in ln or "not known yet" in ln
            continue
        kaddr, how, maddr = int(m.group(1), 16), m.group(2), int(m.group(3), 16)
        assert how in (ask.KSource.SEEN, ask.KSource.SLAB)
        if how == ask.KSource.SLAB:
            assert kaddr % 4096 == maddr % 4096  # kmalloc-64: one-page slabs, same offset
    assert "addresses are the kernel's" in out


def test_kernel_view_maps_model_to_kernel() -> None:
    k = _k()
    c = k.find_cache("kmalloc-64")
    assert c is not None
    a, b = kmalloc(k, 64, GFP_KERNEL), kmalloc(k, 64, GFP_KERNEL)
    page = k.page_of(a)
    assert page is not None and k.page_of(b) is page
    v = ask.KernelView()
    kbase = 0xFFFF888040000000
    v.record(k, kbase + a % 4096, a, c)  # the kernel's object at the same offset of its slab
    assert v.kernel_addr(k, a, c) == (kbase + a % 4096, ask.KSource.SEEN)
    assert v.kernel_addr(k, b, c) == (kbase + b % 4096, ask.KSource.SLAB)
    assert v.model_addr(k, kbase + b % 4096) == b
    other = kmalloc(k, 4096, GFP_KERNEL)
    c4k = k.virt_to_cache(other)
    assert c4k is not None and v.kernel_addr(k, other, c4k) == (0, ask.KSource.UNKNOWN)
