"""The rough edges a new user hit (issue 15): each one's behaviour now."""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from kslab.cli import main

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
