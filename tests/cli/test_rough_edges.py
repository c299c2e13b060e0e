"""The rough edges a new user hit (issue 15): each one's behaviour now."""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from kslab.cli import main
from kslab.cli.replay import DATA as BUNDLED_DATA

DATA = Path(__file__).resolve().parent / "data"
SLUB = DATA / "slub-6.12-excerpt.txt"  # 30 lines of a real Linux 6.12 SLUB trace (oracle S1) with its header

KMALLOC = " cat-50 [000] .... 1.{n:06d}: kmalloc: call_site=alloc_bprm+0x32/0x270 ptr={ptr} bytes_req=416 bytes_alloc={size} gfp_flags=GFP_KERNEL\n"


def run(capsys, *argv: str, stdin: str | bytes | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        assert monkeypatch is not None
        raw = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


COMMANDS = (["replay", "--no-slabinfo"], ["stats"], ["stats", "--no-replay"], ["report", "-o", "OUT"])


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("content", ["", "# tracer: nop\n#\n"], ids=["empty", "header-only"])
def test_empty_trace_is_an_error_naming_the_file(capsys, tmp_path, cmd, content):
    trace = tmp_path / "empty.txt"
    trace.write_text(content)
    out = tmp_path / "r.html"
    argv = [a.replace("OUT", str(out)) for a in cmd]
    rc, _, err = run(capsys, argv[0], str(trace), *argv[1:], "-q")
    assert rc == 1
    assert f"{trace}: no events" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_empty_stdin_is_an_error(capsys, monkeypatch, tmp_path, cmd):
    argv = [a.replace("OUT", str(tmp_path / "r.html")) for a in cmd]
    rc, _, err = run(capsys, argv[0], "-", *argv[1:], "-q", stdin="", monkeypatch=monkeypatch)
    assert rc == 1 and "<stdin>: no events (the input is empty)" in err


def test_binary_input_is_not_a_text_trace(capsys, monkeypatch, tmp_path):
    blob = b"\x17\x08Dtracing6\x00\x00\x00\x00" + bytes(range(256)) * 8
    trace = tmp_path / "trace.dat"
    trace.write_bytes(blob)
    for argv in (["replay", str(trace)], ["stats", str(trace)], ["report", str(trace), "-o", str(tmp_path / "r.html")]):
        rc, out, err = run(capsys, *argv, "-q")
        assert rc == 1 and "not a text trace" in err and str(trace) in err, (argv, err)
        assert "\ufffd" not in err + out
    rc, _, err = run(capsys, "replay", "-", "-q", stdin=blob, monkeypatch=monkeypatch)
    assert rc == 1 and "<stdin>:1: not a text trace" in err
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--skip-bad")  # skipped, yet nothing to replay
    assert rc == 1 and f"{trace}: not a text trace" in err


def test_bundled_wherever_a_trace_is_taken(capsys):
    rc, out, err = run(capsys, "replay", "bundled", "-q")
    assert rc == 0 and "484/484 cells equal" in out, err
    for argv in (["slabinfo", "--from-replay", "bundled", "-q"], ["buddyinfo", "--from-replay", "bundled", "-q"]):
        rc, out, err = run(capsys, *argv)
        assert rc == 0, err
        assert out == run(capsys, argv[0], "--from-replay", str(Path(__file__).parents[2] / "src/kslab/data/oracle-R1-excerpt.txt.xz"),
                          "--caches", str(Path(__file__).parents[2] / "src/kslab/data/oracle-R1-caches.log.xz"),
                          "--start-slabinfo", str(Path(__file__).parents[2] / "src/kslab/data/oracle-R1-slabinfo.0-start"),
                          "--sync-on", "snapshot 0-start begin", "-q")[1]
    rc, out, err = run(capsys, "stats", "bundled", "-q")
    assert rc == 0 and "Allocations" in out, err
    rc, out, err = run(capsys, "top", "bundled", "--once", "-q")  # synced as the bundled replay is
    assert rc == 0 and "86741 / 87693" in out, err


def test_slub_trace_said_once(capsys):
    rc, _, err = run(capsys, "replay", str(SLUB), "-q", "--no-slabinfo")
    assert rc == 0
    warnings = [line for line in err.splitlines() if "SLUB" in line]
    assert len(warnings) == 1 and "looks like a SLUB kernel's" in warnings[0] and "do not predict" in warnings[0]
    rc, _, err = run(capsys, "stats", str(SLUB), "-q", "--no-replay")
    assert rc == 0 and err.count("SLUB kernel's") == 1


def test_slub_kmalloc_sizes_and_names(capsys, tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text("".join(KMALLOC.format(n=i, ptr=f"ffff8880136b{i:04x}", size=8) for i in range(3)))
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--no-slabinfo")
    assert rc == 0 and err.count("SLUB kernel's (line 1: kmalloc gave 8 bytes") == 1
    trace.write_text(" cat-50 [000] .... 1.000001: kmem_cache_alloc: call_site=x+0x1/0x2 ptr=ffff888100002000 bytes_req=16 bytes_alloc=16 gfp_flags=GFP_KERNEL name=kmalloc-rnd-03-16\n")
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--no-slabinfo")
    assert "allocates from kmalloc-rnd-03-16, a cache SLAB does not have" in err


def test_slob_sizes(capsys, tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text(KMALLOC.format(n=1, ptr="ffff8880136b0000", size=424))
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--no-slabinfo")
    assert rc == 0 and "SLOB kernel's (line 1: kmalloc gave 424 bytes" in err


def test_32bit_pointers(capsys, tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text("".join(KMALLOC.format(n=i, ptr=f"c{i:06x}0", size=512) for i in range(250)))
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--no-slabinfo")
    assert rc == 0 and err.count("32-bit kernel's (the first 200 objects' pointers all fit in 32 bits)") == 1
    # a 64-bit trace says nothing
    rc, _, err = run(capsys, "replay", "-q")
    assert rc == 0 and "looks like" not in err


def test_old_kernel_formats(capsys, tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text(" cat-50 [000] .... 1.000001: kmalloc: call_site=ffffffff811a3d10 ptr=ffff8880136b6600 bytes_req=416 bytes_alloc=512 gfp_flags=GFP_KERNEL\n"
                     " cat-50 [000] .... 1.000002: mm_page_free_direct: page=ffffea0000001000 pfn=64 order=0\n")
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--no-slabinfo")
    assert rc == 0 and err.count("much older than 5.10") == 1 and "bare address (ffffffff811a3d10)" in err
    trace.write_text(" cat-50 [000] .... 1.000002: mm_page_free_direct: page=ffffea0000001000 pfn=64 order=0\n"
                     + KMALLOC.format(n=3, ptr="ffff8880136b6600", size=512))
    rc, _, err = run(capsys, "replay", str(trace), "-q", "--no-slabinfo")
    assert rc == 0 and "it has mm_page_free_direct events (before 3.3)" in err


def test_replay_leads_with_the_headline_and_keeps_counters_behind_v(capsys, tmp_path):
    rc, out, err = run(capsys, "replay")
    assert rc == 0
    lines = out.splitlines()
    assert lines[2].startswith("kslab vs the real kernel (oracle-R1-slabinfo.1-files): 484/484 cells equal")
    assert err.strip().count("\n") == 0 and err.startswith("replay: 30,190 lines, 30,179 events in ")
    assert "(-v for the counters)" in err and "applied:" not in err
    rc, out2, err = run(capsys, "replay", "-v")
    assert rc == 0 and out2 == out
    assert "  applied:\n" in err and "  skipped:\n" in err and "kmem_cache_alloc" in err
    # --json keeps every counter, whatever -v says
    j1, j2 = tmp_path / "a.json", tmp_path / "b.json"
    assert run(capsys, "replay", "-q", "--json", str(j1))[0] == 0
    assert run(capsys, "replay", "-v", "--json", str(j2))[0] == 0
    a, b = json.loads(j1.read_text()), json.loads(j2.read_text())
    for d in (a, b):
        d.pop("seconds"), d.pop("events_per_second")
    assert a == b and set(a) >= {"applied", "skipped", "internal", "followed", "slabinfo"} and a["applied"]


def test_replay_kernel_slabinfo_comes_last(capsys, tmp_path):
    rc, out, _ = run(capsys, "replay", "-q", "--kernel-slabinfo", str(BUNDLED_DATA / "oracle-R1-slabinfo.1-files"),
                     str(BUNDLED_DATA / "oracle-R1-excerpt.txt.xz"), "--caches", str(BUNDLED_DATA / "oracle-R1-caches.log.xz"),
                     "--start-slabinfo", str(BUNDLED_DATA / "oracle-R1-slabinfo.0-start"), "--sync-on", "snapshot 0-start begin")
    assert rc == 0 and out.startswith("slabinfo - version: 2.1\n")
    assert out.rstrip().splitlines()[-1] == "kslab vs the real kernel (oracle-R1-slabinfo.1-files): 484/484 cells equal (100.00%)"


def test_sweep_and_stats_count_the_same(capsys):
    rc, out, err = run(capsys, "sweep", "--vary", "cpus=1", "-j", "1", "-q")
    assert rc == 0, err
    assert "the path counters from trace line 202" in out
    row = out.splitlines()[1].split()
    head = out.splitlines()[0].split()
    rc, sout, _ = run(capsys, "stats", "-q", "--json")
    caches = json.loads(sout)["caches"]
    assert int(row[head.index("grow")].replace(",", "")) == sum(c["grow"] for c in caches) == 356
    assert int(row[head.index("alloc_hit")].replace(",", "")) == sum(c["alloc_hit"] for c in caches)


def test_stats_labels_its_two_allocation_counts(capsys):
    rc, out, _ = run(capsys, "stats", "-q")
    assert rc == 0 and "Allocations: 11323 " in out
    assert ("(Allocations: 11,323 counts every allocation event of the trace; the per-cache table's total, 11,244, "
            "the model's allocations from trace line 202 on, where the model synced") in out


def test_help_texts(capsys):
    for cmd in ("sweep", "replay", "report", "stats", "buddyinfo", "geometry", "explain"):
        rc, out, _ = run(capsys, cmd, "--help")
        assert rc == 0
        assert "``" not in out and ":func:" not in out and ":class:" not in out, cmd
        assert "examples:" in out, cmd
    assert "--from-replay bundled" in run(capsys, "buddyinfo", "--help")[1]


def test_geometry_prints_words_not_python_values(capsys):
    rc, out, _ = run(capsys, "geometry", "--size", "3000", "--flags", "SLAB_HWCACHE_ALIGN", "--cpus", "2", "--nodes", "2")
    assert rc == 0
    assert "None" not in out and "[" not in out
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["flags"] == "0x40002000 (SLAB_HWCACHE_ALIGN | CFLGS_OBJFREELIST_SLAB)"
    assert fields["freelist_cache"].startswith("none")
    assert fields["free_limit"] == "26 (node 0), 26 (node 1)"
    rc, out, _ = run(capsys, "geometry", "--size", "3000", "--flags", "SLAB_HWCACHE_ALIGN", "--json")
    d = json.loads(out)
    assert d["flags"] == "0x40002000" and d["flag_names"] == ["SLAB_HWCACHE_ALIGN", "CFLGS_OBJFREELIST_SLAB"]


def test_explain_on_a_header_line_says_so(capsys):
    rc, out, err = run(capsys, "explain", "--trace", "bundled", "--line", "5")
    assert rc == 1 and out == ""
    assert ":5: a header line ('#" in err and "the next event is on line 12 (--line 12)" in err
    rc, out, err = run(capsys, "explain", "--trace", "bundled", "--line", "12")
    assert rc == 0 and out.startswith("event 1 (line 12) ")
    rc, _, err = run(capsys, "explain", "--trace", "bundled", "--line", "999999")
    assert rc == 1 and "the trace has no line 999999" in err


def test_explain_on_a_skipped_line_says_so(capsys, tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text("# tracer: nop\n cat-50 [000] .... 1.000001: sched_switch: prev_comm=cat\n"
                     + KMALLOC.format(n=2, ptr="ffff8880136b6600", size=512))
    rc, _, err = run(capsys, "explain", "--trace", str(trace), "--line", "2")
    assert rc == 1 and ":2: not an event kslab reads (" in err and "--line 3" in err


@pytest.mark.parametrize(("given", "used"), [("11", 10), ("25", 10), ("-1", 0)])
def test_slab_max_order_clamped_as_the_kernel_does(capsys, given, used):
    rc, out, err = run(capsys, "geometry", "--size", "300000", "--slab-max-order", given)
    assert rc == 0
    assert err == (f"kslab: warning: --slab-max-order {given}: the kernel clamps slab_max_order to 0..MAX_ORDER-1 "
                   f"(10): using {used}\n")
    rc, same, err = run(capsys, "geometry", "--size", "300000", "--slab-max-order", str(used))
    assert rc == 0 and err == "" and same == out


def test_slab_max_order_in_range_is_silent(capsys):
    rc, _, err = run(capsys, "geometry", "--size", "3000", "--slab-max-order", "10")
    assert rc == 0 and err == ""


@pytest.mark.parametrize(("topology", "message"), [
    ("0-1,1-2", "CPU 1 is in it twice (in node 0 and in node 1)"),
    ("0+0,1", "CPU 0 is in it twice (both in node 0)"),
    ("0-3,2", "CPU 2 is in it twice (in node 0 and in node 1)"),
])
def test_topology_naming_a_cpu_twice(capsys, topology, message):
    for cpus in ([], ["--cpus", "3"]):  # --cpus 3: the CPU is named, not a count that disagrees
        rc, _, err = run(capsys, "slabinfo", "--topology", topology, *cpus)
        assert rc == 1 and err == f"kslab: error: --topology {topology!r}: {message}: each CPU is on one node\n"


def test_geometry_refused_flags_are_named(capsys):
    """kmem_cache_create_usercopy() refuses flags outside SLAB_FLAGS_PERMITTED with -EINVAL: the one-line
    error gives the kernel's message and names the refused bits."""
    rc, out, err = run(capsys, "geometry", "--size", "100", "--flags", "0x40002000")
    assert rc != 0 and out == ""
    assert err.strip() == ("kslab: error: kmem_cache_create(kslab_geometry) failed with error -22 "
                           "(flags CFLGS_OBJFREELIST_SLAB are outside SLAB_FLAGS_PERMITTED: EINVAL)")
