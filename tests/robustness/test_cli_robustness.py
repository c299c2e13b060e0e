"""The ``kslab`` command on bad options and bad input: exit status 1 and ONE line ``kslab: error: ...`` that
names the input (and the line, where there is one) and suggests the fix where one is obvious; never a traceback.
Options that ask for something that never happened (a marker regex that never matched) are reported as a
``kslab: warning:`` line."""

from __future__ import annotations

import gzip
import lzma
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kslab.tools.fuzz import check_cli, check_cli_result, random_trace, run_cli

DATA = Path(__file__).resolve().parent.parent / "trace" / "data"
TRACE = str(DATA / "oracle-R1-global.txt")  # 2 markers: 'oracle: snapshot 0-start begin/end'


def fill(text: str, files: dict[str, str]) -> str:
    """``{name}`` replaced by the path of the fixture's file ``name``."""
    return re.sub(r"\{([\w.-]+)\}", lambda m: files[m.group(1)], text)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    f = {
        "bad.manifest": "foo 64 0 0x0 0\nbar x 0 0 0\n",
        "bad-flag.manifest": "foo 64 0 SLAB_NOPE 0\n",
        "bad-directive.manifest": "@cpu_down 1\n",
        "bad.slabinfo": "slabinfo - version: 2.1\ngarbage\n",
        "words.slabinfo": "slabinfo - version: 2.1\ndentry a b c d e\n",
        "empty.slabinfo": "",
    }
    out = {}
    for name, text in f.items():
        (tmp_path / name).write_text(text)
        out[name] = str(tmp_path / name)
    (tmp_path / "notxz.xz").write_bytes(b"plain text\n")
    (tmp_path / "notgz.gz").write_bytes(b"plain text\n")
    packed = lzma.compress(Path(TRACE).read_bytes() * 50)
    (tmp_path / "cut.txt.xz").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "cut.manifest.gz").write_bytes(gzip.compress(b"foo 64 0 0 0\n" * 100)[:30])
    (tmp_path / "adir").mkdir()
    for name in ("notxz.xz", "notgz.gz", "cut.txt.xz", "cut.manifest.gz", "adir"):
        out[name] = str(tmp_path / name)
    out["missing"] = str(tmp_path / "missing.txt")
    out["dir"] = str(tmp_path)
    return out


# (argv with {placeholders} from the fixture, what the one error line must contain)
ERRORS = [
    (["--cpus", "0"], "--cpus must be at least 1, not 0"),
    (["--cpus", "-3"], "--cpus must be at least 1"),
    (["--cpus", "1000"], "at most 256 CPUs"),
    (["--nodes", "0"], "--nodes must be at least 1"),
    (["--nodes", "3", "--cpus", "2"], "--nodes 3 is more than --cpus 2"),
    (["--topology", "0-1,x"], "'x' is not a CPU or CPU range"),
    (["--topology", "0-1,1-2"], "CPU 1 is in it twice"),
    (["--topology", "0,2"], "CPU 1 is missing"),
    (["--topology", ","], "empty node"),
    (["--topology", "3-1"], "backwards"),
    (["--topology", "0-99999999999"], "CPU numbers go from 0 to 255"),
    (["--topology", "0-1", "--cpus", "3"], "--cpus 3 disagrees with --topology"),
    (["--nodes", "2", "--cpus", "2", "--no-numa"], "drop --no-numa"),
    (["--mem", "64"], "--mem 64 bytes: at least 64M"),
    (["--mem", "1.5G"], "bad memory size '1.5G': expected a number with an optional K/M/G/T suffix, e.g. 2G"),
    (["--mem", "63M"], "--mem 63M: at least 64M"),
    (["--mem", "65M"], "use a multiple of 2M, e.g. 64M"),
    (["--mem", "66M", "--nodes", "2", "--cpus", "2"], "use a multiple of 4M, e.g. 64M"),
    (["--mem", "9T"], "--mem 9T: at most 4T"),
    (["--mem", ""], "bad memory size ''"),
    (["{missing}"], "missing.txt: No such file or directory"),
    (["{adir}"], "adir: Is a directory"),
    (["{notxz.xz}"], "notxz.xz: not valid xz data after line 0"),
    (["{notgz.gz}"], "notgz.gz: not valid gzip data"),
    (["{cut.txt.xz}"], "cut.txt.xz: the compressed data is cut short after line"),
    (["--caches", "{bad.manifest}"], "bad.manifest:2: size and align must be numbers"),
    (["--caches", "{bad-flag.manifest}"], "bad-flag.manifest:1: unknown flag 'SLAB_NOPE'"),
    (["--caches", "{bad-directive.manifest}"], "bad-directive.manifest:1: unknown directive"),
    (["--caches", "{missing}"], "missing.txt: cannot read: No such file or directory"),
    (["--caches", "{notxz.xz}"], "notxz.xz: cannot decompress"),
    (["--caches", "{cut.manifest.gz}"], "cut.manifest.gz: cannot decompress"),
    (["--caches", TRACE], "(this looks like a trace line: give the trace as TRACE"),
    (["--start-slabinfo", "{bad.slabinfo}"], "--start-slabinfo needs --sync-on REGEX"),
    (["--start-slabinfo", "{bad.slabinfo}", "--sync-on", "x"], "--start-slabinfo {bad.slabinfo}:2: expected 'name"),
    (["--start-slabinfo", "{words.slabinfo}", "--sync-on", "x"], "words.slabinfo:2: a column is not a number"),
    (["--start-slabinfo", "{empty.slabinfo}", "--sync-on", "x"], "empty.slabinfo: no cache lines"),
    (["--start-slabinfo", "{missing}", "--sync-on", "x"], "--start-slabinfo {missing}: cannot read: No such file"),
    (["--start-slabinfo", TRACE, "--sync-on", "x"], "is it a copy of /proc/slabinfo?"),
    (["--sync-on", "("], "--sync-on '(': bad regular expression"),
    (["--snapshot-on", "x"], "--snapshot-on needs --out DIR"),
    (["--snapshot-on", "(", "--out", "{dir}"], "--snapshot-on '(': bad regular expression"),
    (["--action", "foo"], "--action 'foo': expected REGEX=>ACTION"),
    (["--action", "(=>x"], "--action '(=>x': bad regular expression"),
    (["--action", "x=>frobnicate"], "unknown action 'frobnicate' (expected one of slabinfo-write, shrink, reap"),
    (["--action", "x=>shrink"], "shrink needs a cache name, e.g. 'shrink dentry'"),
    (["--action", "x=>slabinfo-write"], "slabinfo-write needs a slabinfo line"),
    (["--action", "x=>reap y"], "reap takes a CPU number, not 'y'"),
    (["--action", "x=>reap 5"], "CPU 5 does not exist (the machine has CPUs 0..0; see --cpus)"),
    (["--action", "x=>drop-caches now"], "drop-caches takes no argument"),
    (["--action", r"(x)=>snapshot \2"], "bad group reference in the action"),
    (["--action", r"(?x)snap # c=>snapshot \5"], "bad group reference in the action"),
    (["--action", "snapshot 0-start begin=>shrink nosuch"], "line 56: action 'shrink nosuch': no such cache"),
    (["--ptr-map", "/proc/nonexistent/x.csv"], "/proc/nonexistent: No such file or directory"),
    (["--json", "/proc/nonexistent/x.json"], "/proc/nonexistent/x.json: No such file or directory"),
]


@pytest.mark.parametrize("argv,message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_error_is_one_line(files: dict[str, str], argv: list[str], message: str) -> None:
    argv = [fill(a, files) for a in argv]
    message = fill(message, files)
    if not any(a.startswith(("{", "/")) or a in files.values() for a in argv[:1]):
        argv = [TRACE, *argv]
    full = ["replay", *argv, "-q", "--no-slabinfo"]
    rc, out, err = run_cli(full)
    line = check_cli_result(full, rc, out, err)
    assert rc == 1, err
    assert message in line, line


@pytest.mark.parametrize("cmd", [["stats", "-q"], ["top", "--once", "-q"], ["report", "-q", "-o", "{dir}/r.html"]])
def test_other_commands_share_the_checks(files: dict[str, str], cmd: list[str]) -> None:
    for argv, message in (([TRACE, "--cpus", "0"], "--cpus must be at least 1"),
                          (["{cut.txt.xz}"], "the compressed data is cut short"),
                          ([TRACE, "--action", "x=>frob"], "unknown action 'frob'")):
        full = [cmd[0], *[fill(a, files) for a in argv], *[fill(a, files) for a in cmd[1:]]]
        rc, out, err = run_cli(full)
        assert rc == 1 and message in check_cli_result(full, rc, out, err)


def test_a_marker_regex_that_never_matches_is_reported() -> None:
    argv = ["replay", TRACE, "-q", "--no-slabinfo", "--sync-on", "nomatch", "--action", "neither=>drop-caches",
            "--action", "snapshot 0-start end=>drop-caches"]
    rc, _, err = run_cli(argv)
    assert rc == 0
    lines = err.splitlines()
    assert lines == [
        "kslab: warning: --sync-on 'nomatch' never matched (none of the trace's 2 markers): nothing was done for it",
        "kslab: warning: --action 'neither=>drop-caches' never matched (none of the trace's 2 markers): nothing was "
        "done for it"]


@pytest.mark.parametrize("text", ["", "# tracer: nop\n#\n"])
def test_empty_and_headers_only_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "t.txt"
    p.write_text(text)
    report = ["report", "-q", "-o", str(tmp_path / "r.html")]
    for cmd in (["replay", "-q"], ["stats", "-q"], ["top", "--once", "-q"], report):
        full = [cmd[0], str(p), *cmd[1:]]
        rc, out, err = run_cli(full)  # an error naming the file, not a "successful" empty replay (issue 15)
        assert rc == 1 and check_cli_result(full, rc, out, err).startswith(f"kslab: error: {p}: no events (")


def test_cache_names_are_escaped_in_the_html_report(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("  a-1 [000] ....  0.1: kmem_cache_alloc: call_site=<img src=x onerror=alert(1)> "
                 "ptr=ffff888012ddeb00 bytes_req=48 bytes_alloc=48 gfp_flags=GFP_KERNEL "
                 "name=<script>alert(1)</script>\n"
                 "  a-1 [000] ....  0.2: tracing_mark_write: </script><b>bold</b>\n")
    out = tmp_path / "r.html"
    rc, _, err = run_cli(["report", str(p), "-q", "-o", str(out)])
    assert rc == 0, err
    page = out.read_text()
    for raw in ("<script>alert(1)</script>", "<img src=x", "<b>bold</b>"):
        assert raw not in page


def test_the_replay_of_a_malformed_line_names_it(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("# tracer: nop\n  a-1 [000] ....  0.1: kmalloc: call_site=f ptr=zz bytes_req=1\n")
    rc, out, err = run_cli(["replay", str(p), "-q"])
    line = check_cli_result(["replay"], rc, out, err)
    assert rc == 1 and line.startswith(f"kslab: error: {p}:2: malformed: bad pointer in ptr")
    rc, out, err = run_cli(["replay", str(p), "-q", "--skip-bad", "--no-slabinfo"])  # skipped: nothing left
    assert rc == 1 and err == (f"kslab: error: {p}: no events (1 header line, 1 line skipped (e.g. malformed: bad "
                               "pointer in ptr))\n")


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_cli_on_adversarial_traces(tmp_path: Path, rng: random.Random) -> None:
    check_cli(random_trace(rng, rng.choice((3, 20, 60))), str(tmp_path), rng)
