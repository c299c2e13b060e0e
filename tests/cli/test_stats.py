"""kslab stats: perf-kmem-style statistics of a trace and per-cache paths of its replay."""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import json
from pathlib import Path

import pytest

import goldens
from kslab.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cli"

# Two CPUs; CPU n runs on node n with --cpus 2 --nodes 2.  Objects 0x1000 (first life) and 0x2000 are freed
# on another CPU than the one that allocated them (ping-pong); 0x9990 was allocated before the trace.
PINGPONG = """\
# tracer: nop
#
            bash-100   [000] ....    10.000001: kmalloc: call_site=alloc_a+0x10/0x40 ptr=ffff888100001000 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL
            bash-100   [000] ....    10.000002: kmalloc: call_site=alloc_a+0x10/0x40 ptr=ffff888100001080 bytes_req=120 bytes_alloc=128 gfp_flags=GFP_KERNEL
            bash-101   [001] ....    10.000003: kfree: call_site=free_x+0x5/0x20 ptr=ffff888100001000
            bash-100   [000] ....    10.000004: kfree: call_site=free_x+0x5/0x20 ptr=ffff888100001080
            bash-101   [001] ....    10.000005: kmalloc: call_site=alloc_b+0x22/0x90 ptr=ffff888100002000 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL
            bash-100   [000] ....    10.000006: kfree: call_site=free_y+0x5/0x20 ptr=ffff888100002000
            bash-101   [001] ....    10.000007: kmalloc: call_site=alloc_a+0x10/0x40 ptr=ffff888100001000 bytes_req=50 bytes_alloc=64 gfp_flags=GFP_KERNEL
            bash-101   [001] ....    10.000008: kfree: call_site=free_x+0x5/0x20 ptr=ffff888100001000
            bash-100   [000] ....    10.000009: kfree: call_site=free_x+0x5/0x20 ptr=ffff888100009990
            bash-100   [000] ....    10.000010: kfree: call_site=free_x+0x5/0x20 ptr=0000000000000000
            bash-100   [000] ....    10.000011: kmalloc_node: call_site=alloc_c+0x1/0x2 ptr=ffff888100003000 bytes_req=200 bytes_alloc=256 gfp_flags=GFP_KERNEL node=1
            bash-100   [000] ....    10.000012: mm_page_alloc: page=ffffea0004000000 pfn=1048576 order=2 migratetype=0 gfp_flags=GFP_KERNEL
            bash-100   [000] ....    10.000013: mm_page_free: page=ffffea0004000000 pfn=1048576 order=2
"""


def check_golden(name: str, text: str) -> None:
    goldens.check_golden(GOLDEN, name, text)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["stats", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def pingpong(tmp_path: Path) -> str:
    p = tmp_path / "pingpong.txt"
    p.write_text(PINGPONG)
    return str(p)


def test_bundled_excerpt_is_golden(capsys):
    rc, out, err = run(capsys, "-q")  # no TRACE: the bundled real excerpt, synced at its first marker
    assert rc == 0, err
    check_golden("stats-excerpt.txt", out)
    assert "SUMMARY (SLAB allocator)" in out and "Per cache, in the model" in out


def test_bundled_excerpt_by_hit(capsys):
    rc, out, err = run(capsys, "--caller", "-s", "hit,bytes", "-l", "8", "--no-replay")
    assert rc == 0, err
    check_golden("stats-excerpt-caller-hit.txt", out)
    assert "Per cache" not in out  # --caller alone: no per-cache table (and --no-replay: no model)


def test_pingpong_trace_is_golden(capsys, pingpong):
    rc, out, err = run(capsys, pingpong, "--cpus", "2", "--nodes", "2", "--caller", "--alloc", "--slab",
                       "-s", "pingpong,hit", "-q")
    assert rc == 0, err
    check_golden("stats-pingpong.txt", out.replace(pingpong, "PINGPONG"))


def test_pingpong_numbers(capsys, pingpong):
    rc, out, err = run(capsys, pingpong, "--cpus", "2", "--nodes", "2", "--caller", "--alloc", "--slab", "--json",
                       "-s", "pingpong,hit", "-q")
    assert rc == 0, err
    d = json.loads(out)
    s = d["summary"]
    assert (s["allocations"], s["frees"], s["cross_cpu_frees"]) == (5, 4, 2)
    assert (s["bytes_requested"], s["bytes_allocated"], s["bytes_freed"]) == (534, 640, 384)
    assert s["net_bytes_allocated"] == 256 and s["bytes_wasted"] == 106
    assert s["fragmentation_percent"] == pytest.approx(16.5625, abs=1e-3)
    assert s["frees_of_objects_allocated_before_the_trace"] == 1 and s["null_frees"] == 1
    assert (s["node_allocations"], s["cross_node_allocations"]) == (1, 1)  # CPU 0 (node 0) asked for node 1
    assert (s["page_allocs"], s["pages_allocated"], s["page_frees"], s["pages_freed"]) == (1, 4, 1, 4)
    assert s["cpus"] == [0, 1] and s["live_objects_at_end"] == 1
    callers = {r["call_site"]: r for r in d["callers"]}
    a = callers["alloc_a+0x10/0x40"]
    assert (a["hit"], a["bytes_req"], a["bytes_alloc"], a["pingpong"], a["frees"]) == (3, 270, 320, 1, 3)
    assert a["frag_percent"] == pytest.approx(15.625)
    assert callers["alloc_b+0x22/0x90"]["pingpong"] == 1
    assert callers["alloc_c+0x1/0x2"]["frag_percent"] == pytest.approx(21.875)
    assert [r["call_site"] for r in d["callers"]] == ["alloc_a+0x10/0x40", "alloc_b+0x22/0x90", "alloc_c+0x1/0x2"]
    allocs = {r["ptr"]: r for r in d["allocs"]}
    assert allocs["0xffff888100001000"]["hit"] == 2 and allocs["0xffff888100001000"]["pingpong"] == 1
    # the model: kmalloc-128's object of node 0 freed on CPU 1 (node 1) goes through the alien array
    caches = {r["name"]: r for r in d["caches"]}
    k128 = caches["kmalloc-128"]
    assert (k128["allocs"], k128["frees"], k128["alien"], k128["free_hit"]) == (2, 2, 1, 1)
    assert [n["node"] for n in k128["nodes"]] == [0, 1]
    assert caches["kmalloc-256"]["grow"] == 1 and caches["kmalloc-256"]["pages_from_buddy"] == 1


@pytest.mark.parametrize("sort", ["frag", "hit", "bytes", "pingpong"])
def test_sort_keys(capsys, pingpong, sort):
    rc, out, err = run(capsys, pingpong, "--cpus", "2", "--caller", "--alloc", "--json", "-s", sort, "--no-replay")
    assert rc == 0, err
    d = json.loads(out)
    field = {"frag": "frag_percent", "hit": "hit", "bytes": "bytes_alloc", "pingpong": "pingpong"}[sort]
    for table in ("callers", "allocs"):
        values = [r[field] for r in d[table]]
        assert values == sorted(values, reverse=True), (table, values)


def test_json_schema(capsys):
    rc, out, err = run(capsys, "--json", "--alloc", "--caller", "--slab", "-l", "5", "-q")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d) == {"sort", "summary", "callers", "allocs", "alloc_ptrs", "caches", "model", "trace"}
    assert d["sort"] == ["frag", "hit", "bytes"]
    summary_types = {
        "allocations": int, "frees": int, "failed_allocations": int, "null_frees": int, "live_objects_at_end": int,
        "frees_of_objects_allocated_before_the_trace": int, "bytes_requested": int, "bytes_allocated": int,
        "bytes_freed": int, "net_bytes_allocated": int, "bytes_wasted": int, "fragmentation_percent": float,
        "cross_cpu_frees": int, "node_allocations": int, "cross_node_allocations": int, "call_sites": int,
        "page_allocs": int, "pages_allocated": int, "page_frees": int, "pages_freed": int, "cpus": list,
    }
    assert set(d["summary"]) == set(summary_types)
    for key, t in summary_types.items():
        assert isinstance(d["summary"][key], t), key
    site_types = {"call_site": str, "hit": int, "bytes_req": int, "bytes_alloc": int, "frag_percent": float,
                  "pingpong": int, "frees": int}
    assert len(d["callers"]) == 5 and len(d["allocs"]) == 5 and d["alloc_ptrs"] > 5
    for row in d["callers"]:
        assert set(row) == set(site_types) and all(isinstance(row[k], t) for k, t in site_types.items())
    for row in d["allocs"]:
        assert set(row) == set(site_types) | {"ptr"} and row["ptr"].startswith("0x")
    cache_int = ("allocs", "alloc_hit", "refill_shared", "refill_slab", "frees", "free_hit", "free_miss", "to_shared",
                 "free_block", "alien", "grow", "slabs_destroyed", "reaped_slabs", "pages_from_buddy",
                 "pages_to_buddy", "active_objs", "num_objs", "pages_now")
    assert d["caches"]
    for row in d["caches"]:
        assert set(row) == {"name", "nodes", *cache_int}
        assert all(isinstance(row[k], int) for k in cache_int)
        for n in row["nodes"]:
            assert set(n) == {"node", "partial", "full", "free", "free_objects", "shared_avail"}
        # every free either hit the per-CPU array or flushed it (1 CPU, 1 node: no alien path)
        assert row["frees"] == row["free_hit"] + row["free_miss"]
        assert row["free_miss"] == row["to_shared"] + row["free_block"]
    assert set(d["model"]) == {"start_line", "pages_allocated", "pages_freed"}
    assert d["model"]["start_line"] > 12  # counted from the sync, not from boot
    assert sum(r["pages_from_buddy"] for r in d["caches"]) == d["model"]["pages_allocated"]


def test_all_caches(capsys, pingpong):
    rc, out, _ = run(capsys, pingpong, "--slab", "--json", "--all-caches", "-q")
    assert rc == 0
    d = json.loads(out)
    assert "callers" not in d and len(d["caches"]) > 50


def test_help_has_examples(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    assert "examples:" in out and "pingpong" in out and "--no-replay" in out


def test_bad_sort_key(capsys, pingpong):
    rc, out, err = run(capsys, pingpong, "-s", "frag,bogus")
    assert rc == 1 and out == ""
    assert err == "kslab: error: unknown sort key 'bogus' in -s 'frag,bogus': use frag, hit, bytes, pingpong, " \
                  "callsite, ptr\n"


def test_missing_trace_file(capsys, tmp_path):
    missing = tmp_path / "nope.txt.xz"
    rc, out, err = run(capsys, str(missing))
    assert rc == 1 and out == ""
    assert err == f"kslab: error: {missing}: No such file or directory\n"


@pytest.mark.parametrize("no_replay", [False, True])
def test_malformed_trace_line(capsys, tmp_path, no_replay):
    bad = tmp_path / "bad.txt"
    bad.write_text(PINGPONG.replace("kfree: call_site=free_y+0x5/0x20 ptr=ffff888100002000",
                                    "kfree: call_site=free_y+0x5/0x20 ptr=ffff888100002000\n???"))
    rc, out, err = run(capsys, str(bad), *(["--no-replay"] if no_replay else []))
    assert rc == 1 and out == ""
    assert err.startswith(f"kslab: error: {bad}:9: malformed") and len(err.splitlines()) == 1


def test_skip_bad(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(PINGPONG + "???\n")
    rc, out, _ = run(capsys, str(bad), "--skip-bad", "--json", "--cpus", "2", "-q")
    assert rc == 0 and json.loads(out)["summary"]["allocations"] == 5


def test_conflicting_options(capsys, pingpong):
    rc, _, err = run(capsys, pingpong, "--slab", "--no-replay")
    assert rc == 1 and "--slab needs the replay" in err
    rc, _, err = run(capsys, pingpong, "--lines", "-2")
    assert rc == 1 and "--lines -2" in err
