"""kslab report: the HTML file itself (self-contained, deterministic, escaped, complete data).

The page's behaviour in a real browser is tested in test_report_browser.py.
"""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kslab.cli import main
from kslab.cli.replay import DATA

DATA_RE = re.compile(r'<script type="application/json" id="kslab-data">(.*?)</script>', re.S)
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

HOSTILE = """\
# tracer: nop
#
 evil-1 [000] .... 1.000001: tracing_mark_write: phase </script><img src=x onerror=alert(1)> & <!-- done
 evil-1 [000] .... 1.000002: kmalloc: call_site=</script><b>x</b>+0x1/0x2 ptr=ffff888100001000 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL
 evil-1 [001] .... 1.000003: kfree: call_site=free+0x1/0x2 ptr=ffff888100001000
 evil-1 [000] .... 1.000004: kmem_cache_alloc: call_site=x+0x1/0x2 ptr=ffff888100002000 bytes_req=48 bytes_alloc=64 gfp_flags=GFP_KERNEL name=<svg/onload=alert(2)>
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["report", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def page_data(text: str) -> dict:
    m = DATA_RE.search(text)
    assert m, "no data script"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "-o", str(out), "-q"]) == 0
    return out


def test_self_contained(bundled):
    text = bundled.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>\n")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in text
    assert text.count("<script") == 3 and text.count("</script>") == 3  # error hook, data, code
    lowered = text.lower()
    for bad in ("<link", "<iframe", "<img", "<object", "<embed", " src=", "href=", "@import", "url(",
                "fetch(", "xmlhttprequest", "websocket", "eventsource", "sendbeacon", "import(", "innerhtml",
                "outerhtml", "insertadjacenthtml", "document.write", "eval("):
        assert bad not in lowered, bad
    # the only URL is the SVG namespace name, which createElementNS needs and nobody fetches
    assert re.findall(r"https?://[^\"' )]+", text) == ["http://www.w3.org/2000/svg"]


def test_deterministic(bundled, capsys, tmp_path):
    again = tmp_path / "again.html"
    rc, _, err = run(capsys, "-o", str(again), "-q")
    assert rc == 0, err
    assert again.read_bytes() == bundled.read_bytes()
    text = bundled.read_text(encoding="utf-8")
    assert not re.search(r"20\d\d-\d\d-\d\d", text)  # no date: nothing varies from run to run


def test_data(bundled):
    d = page_data(bundled.read_text(encoding="utf-8"))
    for key in ("trace", "machine", "replay", "stats", "model", "x", "line", "ts", "top", "mem", "mem_other", "objs",
                "objs_other", "lists", "lists_all", "arrays", "paths", "markers", "occupancy", "slabinfo",
                "cache_paths", "callers"):
        assert key in d, key
    n = len(d["x"])
    assert 300 <= n <= 601, n
    assert d["x"] == sorted(d["x"]) and len(d["line"]) == n and len(d["ts"]) == n
    assert d["x"][-1] == d["replay"]["events"]
    assert d["x"][0] > 0  # sampling restarted at the sync (marker 'snapshot 0-start begin')
    assert 1 <= len(d["top"]) <= 10 and d["top"][0] == "kmalloc-64"
    for name in d["top"]:
        assert len(d["mem"][name]) == n and len(d["objs"][name]) == n and len(d["lists"][name]["full"]) == n
    assert all(len(v) == n for v in d["paths"].values())
    assert len(d["arrays"]["cpu"]) == d["machine"]["cpus"] == 1
    # the last sample is the final state: its pages are the final slabinfo's
    cols = d["slabinfo"]["columns"]
    rows = d["slabinfo"]["rows"]
    pages = sum(r[cols.index("num_slabs")] * r[cols.index("pagesperslab")] for r in rows)
    assert sum(d["mem"][name][-1] for name in d["top"]) + d["mem_other"][-1] == pages
    slabs = sum(r[cols.index("num_slabs")] for r in rows)
    assert sum(d["occupancy"]["all"]) == slabs
    assert sum(d["lists_all"][k][-1] for k in ("partial", "full", "free")) == slabs
    assert len(d["occupancy"]["labels"]) == len(d["occupancy"]["all"]) == 12
    for c in d["occupancy"]["caches"].values():
        assert len(c["counts"]) == c["num"] + 1
    hits = [r[1] for r in d["callers"]["rows"]]
    assert hits == sorted(hits, reverse=True) and d["callers"]["total"] == len(hits)
    assert d["callers"]["columns"][0] == "call_site" and d["slabinfo"]["columns"][0] == "name"
    assert {m["text"] for m in d["markers"]} >= {"oracle: snapshot 1-files end"}
    assert d["replay"]["sync"]["caches"] == 121


def test_stdout_and_samples(capsys):
    rc, out, err = run(capsys, "-o", "-", "--samples", "10", "--top", "3")
    assert rc == 0, err
    d = page_data(out)
    assert 10 <= len(d["x"]) <= 21 and len(d["top"]) == 3


def test_hostile_strings_are_escaped(capsys, tmp_path):
    trace = tmp_path / "a<b>&c.txt"
    trace.write_text(HOSTILE)
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, str(trace), "--cpus", "2", "-o", str(out), "-q")
    assert rc == 0, err
    text = out.read_text(encoding="utf-8")
    assert text.count("</script>") == 3 and "<!--" not in text
    assert "<img" not in text and "<b>" not in text and "<svg/" not in text
    assert "<title>kslab report: " + str(tmp_path).replace("&", "&amp;") + "/a&lt;b&gt;&amp;c.txt</title>" in text
    d = page_data(text)
    assert d["trace"] == str(trace)
    assert d["markers"][0]["text"] == "phase </script><img src=x onerror=alert(1)> & <!-- done"
    assert d["callers"]["rows"][0][0] == "</script><b>x</b>+0x1/0x2"
    assert d["stats"]["cross_cpu_frees"] == 1


def test_help_has_examples(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "examples:" in out and "kslab report trace.txt.xz -o report.html" in out


def test_missing_trace_file(capsys, tmp_path):
    missing = tmp_path / "nope.txt"
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, str(missing), "-o", str(out))
    assert rc == 1 and err == f"kslab: error: {missing}: No such file or directory\n"
    assert not out.exists()


def test_malformed_trace_line(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(HOSTILE + "garbage\n")
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, str(bad), "-o", str(out))
    assert rc == 1 and err.startswith(f"kslab: error: {bad}:7: malformed") and len(err.splitlines()) == 1
    assert not out.exists()


def test_bad_options(capsys, tmp_path):
    rc, _, err = run(capsys, "-o", str(tmp_path / "r.html"), "--top", "0")
    assert rc == 1 and err == "kslab: error: --top 0: must be at least 1\n"
    rc, _, err = run(capsys)  # -o is required: argparse's usage error
    assert rc == 2 and "-o/--output" in err


def altered_kernel(tmp_path: Path) -> Path:
    """The bundled kernel's /proc/slabinfo at the end, with dentry's num_objs and num_slabs changed."""
    lines = (DATA / "oracle-R1-slabinfo.1-files").read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("dentry "):
            f = line.split()
            f[2] = str(int(f[2]) + 21)
            f[-2] = str(int(f[-2]) + 1)  # slabdata active_slabs num_slabs sharedavail
            lines[i] = " ".join(f) + "\n"
    out = tmp_path / "slabinfo.end"
    out.write_text("".join(lines))
    return out


def test_prediction_against_the_kernel_bundled(bundled):
    d = page_data(bundled.read_text(encoding="utf-8"))
    [c] = d["kernel"]
    assert (c["label"], c["equal"], c["total"], c["caches"]) == ("end", 484, 484, 121)
    assert c["diffs"] == [] and c["num_objs_errors"] == [] and c["kernel_file"].endswith("oracle-R1-slabinfo.1-files")


def test_prediction_differing_cells_and_the_replay_agrees(capsys, tmp_path):
    kernel = altered_kernel(tmp_path)
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, "-o", str(out), "-q", "--kernel-slabinfo", str(kernel))
    assert rc == 0, err
    [c] = page_data(out.read_text(encoding="utf-8"))["kernel"]
    assert (c["equal"], c["total"]) == (482, 484)
    model_objs = next(m for n, m, _ in c["num_objs_errors"] if n == "dentry")
    assert c["num_objs_errors"] == [["dentry", model_objs, model_objs + 21]]
    assert sorted(d[1] for d in c["diffs"]) == ["num_objs", "num_slabs"] and {d[0] for d in c["diffs"]} == {"dentry"}
    # kslab replay compares with the same code: the same count and the same cells
    assert main(["replay", "-q", "--kernel-slabinfo", str(kernel)]) == 0
    printed = capsys.readouterr().out
    assert "482/484 cells equal (99.59%)" in printed
    assert re.search(rf"dentry +num_objs +kslab +{model_objs} +kernel +{model_objs + 21}", printed)


def test_prediction_at_each_snapshot(capsys, tmp_path):
    """--snapshot-on: each snapshot with a kernel slabinfo.<label> in --kernel-dir is compared."""
    kdir = tmp_path / "kernel"
    kdir.mkdir()
    (kdir / "slabinfo.1-files").write_text((DATA / "oracle-R1-slabinfo.1-files").read_text())
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, "-o", str(out), "-q", "--snapshot-on", r"snapshot (\S+) end", "--out", str(tmp_path),
                     "--kernel-dir", str(kdir))
    assert rc == 0, err
    labels = [(c["label"], c["total"]) for c in page_data(out.read_text(encoding="utf-8"))["kernel"]]
    assert labels == [("1-files", 484), ("end", 484)]


def test_missing_kernel_file_fails_before_the_replay(capsys, tmp_path):
    rc, _, err = run(capsys, "-o", str(tmp_path / "r.html"), "--kernel-slabinfo", str(tmp_path / "nope"))
    assert rc != 0 and "nope" in err and "cannot read" in err
    assert not (tmp_path / "r.html").exists()


def test_cache_series_and_state(bundled):
    d = page_data(bundled.read_text(encoding="utf-8"))
    n = len(d["x"])
    assert set(d["cache_series"]) == {row[0] for row in d["slabinfo"]["rows"]}
    for name, series in d["cache_series"].items():
        assert len(series) == 5 and all(len(s) in (1, n) for s in series), name
    # a constant series is stored as its one value; dentry moves
    assert len(d["cache_series"]["dentry"][1]) == n
    st = d["cache_state"]["dentry"]
    assert st["arrays"][0][0] == "CPU 0" and len(st["nodes"]) == 1 and "grows" in st["paths"]
    # the last sample is the final state: the lists add up to the slabinfo's num_slabs
    row = next(r for r in d["slabinfo"]["rows"] if r[0] == "dentry")
    cols = d["slabinfo"]["columns"]
    assert sum(s[-1] for s in d["cache_series"]["dentry"][2:]) == row[cols.index("num_slabs")]


def test_snapshots_never_overwrite_the_kernel_files(capsys, tmp_path):
    kdir = tmp_path / "kernel"
    kdir.mkdir()
    (kdir / "slabinfo.1-files").write_text("kernel's")
    rc, _, err = run(capsys, "-o", str(tmp_path / "r.html"), "-q", "--snapshot-on", r"snapshot (\S+) end",
                     "--out", str(kdir), "--kernel-dir", str(kdir))
    assert rc == 1 and "would overwrite them" in err
    assert (kdir / "slabinfo.1-files").read_text() == "kernel's"


def snapshot_report(tmp_path: Path) -> Path:
    """The bundled trace synced with kernel/slabinfo.0-start, snapshots at every 'snapshot X begin/end'."""
    kdir = tmp_path / "kernel"
    kdir.mkdir()
    (kdir / "slabinfo.0-start").write_text((DATA / "oracle-R1-slabinfo.0-start").read_text())
    (kdir / "slabinfo.1-files").write_text((DATA / "oracle-R1-slabinfo.1-files").read_text())
    out = tmp_path / "snaps.html"
    assert main(["report", str(DATA / "oracle-R1-excerpt.txt.xz"), "--caches", str(DATA / "oracle-R1-caches.log.xz"),
                 "--start-slabinfo", str(kdir / "slabinfo.0-start"), "--sync-on", "snapshot 0-start begin",
                 "--snapshot-on", r"snapshot (\S+) (?:begin|end)", "--out", str(tmp_path), "--kernel-dir", str(kdir),
                 "--kernel-slabinfo", str(kdir / "slabinfo.1-files"), "-o", str(out), "-q"]) == 0
    return out


def test_the_sync_snapshot_is_not_a_prediction(tmp_path):
    d = page_data(snapshot_report(tmp_path).read_text(encoding="utf-8"))
    # 0-start is where the model took the kernel's state: not compared; 1-files at its begin and end markers
    # (both labelled 1-files) and at the end of the trace
    assert [(c["label"], c["equal"], c["total"]) for c in d["kernel"]] == [
        ("1-files", 484, 484), ("1-files", 484, 484), ("end", 484, 484)]
