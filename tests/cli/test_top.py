"""kslab top: slabtop of the model after boot and after the replay of the bundled real excerpt."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

import goldens
from kslab.cli import main
from kslab.report.top import SORT_KEYS

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cli"
DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"
EXCERPT = [str(DATA / "oracle-R1-excerpt.txt.xz"), "--caches", str(DATA / "oracle-R1-caches.log.xz"),
           "--start-slabinfo", str(DATA / "oracle-R1-slabinfo.0-start"), "--sync-on", "snapshot 0-start begin"]


def check_golden(name: str, text: str) -> None:
    goldens.check_golden(GOLDEN, name, text)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["top", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


ROW = re.compile(r"^ *(\d+) +(\d+) +(\d+)% +([\d.]+)K +(\d+) +(\d+) +(\d+)K (\S+)$")


def table(out: str) -> list[tuple[int, int, int, float, int, int, int, str]]:
    _, _, body = out.partition("  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME\n")
    assert body, out
    rows = []
    for line in body.splitlines():
        m = ROW.match(line)
        assert m, line
        g = m.groups()
        rows.append((int(g[0]), int(g[1]), int(g[2]), float(g[3]), int(g[4]), int(g[5]), int(g[6]), g[7]))
    return rows


def test_after_boot_is_golden(capsys):
    rc, out, err = run(capsys, "-o")
    assert rc == 0, err
    check_golden("top-boot.txt", out)


def test_after_boot_2cpus_2nodes_by_cache_size(capsys):
    rc, out, err = run(capsys, "--cpus", "2", "--nodes", "2", "-s", "c", "-o")
    assert rc == 0, err
    check_golden("top-boot-2cpu-2node-c.txt", out)


def test_after_the_bundled_excerpt_is_golden(capsys):
    rc, out, err = run(capsys, *EXCERPT, "-s", "c", "-o", "-q")
    assert rc == 0, err
    check_golden("top-excerpt-c.txt", out)
    rows = table(out)
    assert rows[0][7] == "kmalloc-64"  # 4152K, the biggest cache at the end of the phase
    sizes = [r[6] for r in rows]
    assert sizes == sorted(sizes, reverse=True)


def test_not_a_terminal_means_once(capsys):
    rc, out, _ = run(capsys, "-n", "3")  # capsys' stdout is no TTY: one-shot without -o
    assert rc == 0
    assert "\x1b[" not in out
    assert len(table(out)) == 3


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_every_slabtop_sort_key(capsys, key):
    rc, out, err = run(capsys, "-s", key, "-o", "--cpus", "2")
    assert rc == 0, err
    rows = table(out)
    col = {"a": 1, "b": 5, "c": 6, "l": 4, "n": 7, "o": 0, "s": 3, "u": 2}.get(key)
    if col is not None:
        values = [r[col] for r in rows]
        assert values == sorted(values, reverse=key != "n"), key
    # ties are broken by name, ascending
    for a, b in itertools.pairwise(rows):
        if col is not None and a[col] == b[col]:
            assert a[7] < b[7]


def test_summary_lines_are_slabtops(capsys):
    _, out, _ = run(capsys, "-o")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == [
        " Active / Total Objects (% used)    ", " Active / Total Slabs (% used)      ",
        " Active / Total Caches (% used)     ", " Active / Total Size (% used)       ",
        " Minimum / Average / Maximum Object "]
    assert lines[5] == ""


def test_json_schema(capsys):
    rc, out, err = run(capsys, *EXCERPT, "--json", "-n", "5", "-s", "a", "-q")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d) == {"sort", "summary", "caches", "replay", "machine"}
    assert d["sort"] == "a"
    s = d["summary"]
    for key in ("active_objs", "objs", "active_slabs", "slabs", "active_caches", "caches", "active_size", "total_size",
                "min_obj_size", "avg_obj_size", "max_obj_size", "pages"):
        assert isinstance(s[key], int), key
    assert 0 < s["active_objs"] <= s["objs"]
    assert len(d["caches"]) == 5
    row_types = {"name": str, "objs": int, "active": int, "use": int, "obj_size": int, "slabs": int,
                 "active_slabs": int, "obj_per_slab": int, "pages_per_slab": int, "cache_size_kib": int, "limit": int,
                 "batchcount": int, "sharedfactor": int, "sharedavail": int}
    for row in d["caches"]:
        assert set(row) == set(row_types)
        for key, t in row_types.items():
            assert isinstance(row[key], t), key
    actives = [r["active"] for r in d["caches"]]
    assert actives == sorted(actives, reverse=True)
    r = d["replay"]
    assert r["events"] > 30000 and r["lines"] == 30190 and isinstance(r["sync"], dict)
    assert d["machine"] == {"cpus": 1, "nodes": 1}


def test_json_after_boot_has_no_replay(capsys):
    rc, out, _ = run(capsys, "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["replay"] is None and len(d["caches"]) == d["summary"]["caches"]


def test_a_terminal_without_input_prints_once(capsys, monkeypatch):
    import sys  # noqa: PLC0415

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # stdin (pytest's) is no terminal: no keys to read
    rc, out, err = run(capsys, *EXCERPT, "-n", "5", "-q")
    assert rc == 0, err
    assert "\x1b[" not in out and len(table(out)) == 5


def test_delay_and_once_cannot_be_combined(capsys):
    rc, out, err = run(capsys, "-d", "2", "-o")
    assert rc == 1 and out == ""
    assert err == "kslab: error: -d/--delay and -o/--once cannot be combined (as in slabtop)\n"


@pytest.mark.parametrize("delay", ["0", "-3"])
def test_delay_must_be_positive(capsys, delay):
    rc, _, err = run(capsys, "-d", delay)
    assert rc == 1 and f"-d/--delay {delay}: must be a positive number of seconds" in err


def test_use_is_procps_single_precision():
    from kslab.report.top import slabtop_use  # noqa: PLC0415

    # procps: (unsigned)(100 * ((float)active / num)); 53/100 is 52.999996 in single precision
    assert slabtop_use(53, 100) == 52 and slabtop_use(59, 100) == 58
    assert slabtop_use(50, 100) == 50 and slabtop_use(0, 0) == 0 and slabtop_use(7, 7) == 100


def test_uppercase_sort_keys_are_slabtops(capsys):
    rc, out, _ = run(capsys, "-s", "N", "-o")
    assert rc == 0
    names = [r[7] for r in table(out)]
    assert names == sorted(names)


def test_help_has_examples(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    assert "examples:" in out and "kslab top trace.txt.xz" in out
    assert "u: utilisation" in out


def test_bad_sort_key(capsys):
    rc, out, err = run(capsys, "-s", "x")
    assert rc == 1 and out == ""
    assert err.startswith("kslab: error: unknown sort key 'x'") and len(err.splitlines()) == 1


def test_missing_trace_file(capsys, tmp_path):
    missing = tmp_path / "nope.txt"
    rc, _, err = run(capsys, str(missing), "-o")
    assert rc == 1
    assert err == f"kslab: error: {missing}: No such file or directory\n"


def test_malformed_trace_line(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# tracer: nop\n#\n"
                   "  bash-1  [000] ....  1.000001: kmalloc: call_site=f+0x1/0x2 ptr=ffff888000001000 bytes_req=8 "
                   "bytes_alloc=8 gfp_flags=GFP_KERNEL\n"
                   "this is not a trace line\n")
    rc, _, err = run(capsys, str(bad), "-o")
    assert rc == 1
    assert err.startswith(f"kslab: error: {bad}:4: malformed") and len(err.splitlines()) == 1


def test_replay_options_need_a_trace(capsys):
    rc, _, err = run(capsys, "--sync-on", "x")
    assert rc == 1 and "need a TRACE" in err


def test_bad_lines(capsys):
    rc, _, err = run(capsys, "-n", "-1")
    assert rc == 1 and "--lines -1" in err
