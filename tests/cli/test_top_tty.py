"""kslab top's full-screen view, driven through a pseudo-terminal: pexpect for the exit status, tmux
(send-keys, capture-pane) to read the screen as text.  Skipped when either is missing.  No wall-clock
asserts: every wait is for screen content, with a generous timeout."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
TMUX = shutil.which("tmux")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "src" / "kslab" / "data"
EXCERPT = [str(DATA / "oracle-R1-excerpt.txt.xz"), "--caches", str(DATA / "oracle-R1-caches.log.xz"),
           "--start-slabinfo", str(DATA / "oracle-R1-slabinfo.0-start"), "--sync-on", "'snapshot 0-start begin'"]
ROW = re.compile(r"^ *(\d+) +(\d+) +(\d+)% +([\d.]+)K +(\d+) +(\d+) +(\d+)K (\S+)( \*)?$")
WAIT = 90.0


def env() -> dict[str, str]:
    e = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TERM="xterm", LINES="50", COLUMNS="120")
    return e


class Tmux:
    """One tmux server of our own (its own socket), one window running kslab top."""

    def __init__(self, argv: list[str]) -> None:
        assert TMUX is not None
        self.dir = tempfile.mkdtemp(prefix="kstop")
        self.base = [TMUX, "-S", os.path.join(self.dir, "s"), "-f", "/dev/null"]
        cmd = (f"cd {ROOT} && PYTHONPATH=src TERM=xterm {sys.executable} -m kslab top {' '.join(argv)}; "
               "echo EXIT=$?; sleep 600")
        subprocess.run([*self.base, "new-session", "-d", "-x", "120", "-y", "50", "-s", "t", cmd], check=True,
                       env=env())

    def keys(self, *keys: str) -> None:
        for k in keys:
            subprocess.run([*self.base, "send-keys", "-t", "t", k], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "t"], check=True, capture_output=True,
                              text=True).stdout

    def wait(self, ok: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            text = self.screen()
            if ok(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def tmux() -> Iterator[Callable[..., Tmux]]:
    if TMUX is None:
        pytest.skip("tmux is not installed")
    made: list[Tmux] = []

    def start(*argv: str) -> Tmux:
        t = Tmux(list(argv))
        made.append(t)
        return t
    yield start
    for t in made:
        t.close()


def rows(text: str) -> list[tuple[int, int, str]]:
    """(objs, cache size KiB, name) of the table's rows on the screen."""
    out = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            out.append((int(m.group(1)), int(m.group(7)), m.group(8)))
    return out


def header(text: str) -> tuple[int, int]:
    m = re.search(r"line ([\d,]+) - ts [\d.]+ - event ([\d,]+)", text)
    assert m, text
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def test_q_quits_with_exit_status_0():
    child = pexpect.spawn(sys.executable, ["-m", "kslab", "top", "--cpus", "2"], env=env(), cwd=str(ROOT),
                          dimensions=(50, 120), encoding="utf-8", timeout=WAIT)
    child.expect("Active / Total Objects")
    child.expect("NAME")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and child.signalstatus is None


def test_q_quits_a_replay_with_exit_status_0():
    argv = [a.strip("'") for a in EXCERPT]
    child = pexpect.spawn(sys.executable, ["-m", "kslab", "top", *argv, "--paused"], env=env(), cwd=str(ROOT),
                          dimensions=(50, 120), encoding="utf-8", timeout=WAIT)
    child.expect("PAUSED")
    child.send("Q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_sort_keys_reorder_the_rows(tmux):
    t = tmux("--cpus", "2")
    first = t.wait(lambda s: len(rows(s)) > 20, "the table")
    objs = [r[0] for r in rows(first)]
    assert objs == sorted(objs, reverse=True)  # o, the default
    t.keys("n")
    by_name = t.wait(lambda s: [r[2] for r in rows(s)] == sorted(r[2] for r in rows(s)), "sorted by name")
    t.keys("C")  # either case, as slabtop
    by_size = t.wait(lambda s: [r[1] for r in rows(s)] == sorted((r[1] for r in rows(s)), reverse=True)
                     and rows(s) != rows(by_name), "sorted by cache size")
    assert [r[2] for r in rows(by_size)] != [r[2] for r in rows(by_name)]
    t.keys("q")
    t.wait(lambda s: "EXIT=0" in s, "exit 0")


def test_stepping_moves_the_line_and_going_back_returns(tmux):
    t = tmux(*EXCERPT, "--paused")
    start = t.wait(lambda s: "PAUSED" in s, "the first stop")
    line0, ev0 = header(start)
    t.keys("5", "0", ".")
    stepped = t.wait(lambda s: header(s)[1] == ev0 + 50, "50 events on")
    line1, _ = header(stepped)
    assert line1 > line0
    t.keys("m")
    at_marker = t.wait(lambda s: "last marker: line 29,922: oracle: phase 1 files end" in s, "the next marker")
    line2, ev2 = header(at_marker)
    assert line2 == 29922
    t.keys(",")
    back = t.wait(lambda s: header(s)[1] == ev2 - 1, "one event back")
    assert header(back)[0] < line2 and "last marker: line 2,041" in back
    t.keys("g")  # without a count: line 1, the earliest stop
    earliest = t.wait(lambda s: header(s) == (line0, ev0), "the earliest stop again")
    assert rows(earliest) == rows(start)
    t.keys("q")
    t.wait(lambda s: "EXIT=0" in s, "exit 0")


def test_a_selected_cache_shows_its_arrays_and_the_kernel(tmux):
    t = tmux(*EXCERPT, "--paused")
    table = t.wait(lambda s: "PAUSED" in s and len(rows(s)) > 5, "the table")
    second = rows(table)[1][2]
    t.keys("Down", "Enter")
    view = t.wait(lambda s: "per-CPU arrays (cpu_cache):" in s, "the cache view")
    assert f"{second}: object_size" in view
    assert "    CPU 0 " in view and "free_objects" in view and "next_reap" in view and "shared" in view
    assert "no kernel slabinfo at this point" in view
    t.keys("]")  # the next snapshot: the kernel's slabinfo.1-files beside the model's
    t.wait(lambda s: "kernel  oracle-R1-slabinfo.1-files (line 29926)" in s, "the kernel's line")
    t.keys("Escape")
    t.wait(lambda s: "kernel: oracle-R1-slabinfo.1-files (marker line 29,926, read at line 30,118): 484/484 cells "
           "equal" in s
           and len(rows(s)) > 5, "the table again")
    t.keys("q")
    t.wait(lambda s: "EXIT=0" in s, "exit 0")


def test_running_takes_steps(tmux):
    t = tmux(*EXCERPT, "--every", "5000", "-d", "1")
    first = t.wait(lambda s: "RUNNING" in s, "running")
    _, ev = header(first)
    t.wait(lambda s: header(s)[1] >= ev + 5000, "a step while running")
    t.keys("r")
    t.wait(lambda s: "PAUSED" in s, "paused")
    t.keys("q")
    t.wait(lambda s: "EXIT=0" in s, "exit 0")


def test_a_missing_trace_is_one_line_before_any_screen(tmp_path):
    missing = tmp_path / "nope.txt"
    child = pexpect.spawn(sys.executable, ["-m", "kslab", "top", str(missing)], env=env(), cwd=str(ROOT),
                          dimensions=(50, 120), encoding="utf-8", timeout=WAIT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert child.before == f"kslab: error: {missing}: No such file or directory\r\n"
