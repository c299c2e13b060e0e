"""kslab top's time machine, driven by a scripted controller (no terminal): stops, markers, snapshots
with the kernel's slabinfo, and going back to a state equal to the one left."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kslab.cli import build_parser
from kslab.cli.top_run import time_machine
from kslab.cli.top_time import Command, Go, Point
from kslab.report.top import sorted_rows
from kslab.report.top_detail import cache_detail

DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"
EXCERPT = [str(DATA / "oracle-R1-excerpt.txt.xz"), "--caches", str(DATA / "oracle-R1-caches.log.xz"),
           "--start-slabinfo", str(DATA / "oracle-R1-slabinfo.0-start"), "--sync-on", "snapshot 0-start begin"]


class Script:
    """A controller that gives its commands in turn and records what it saw at each stop."""

    def __init__(self, *commands: Command) -> None:
        self.commands = list(commands)
        self.seen: list[dict[str, object]] = []

    def __call__(self, p: Point) -> Command:
        self.seen.append({"pos": p.pos, "line": p.lineno, "finished": p.finished, "applied": p.applied,
                          "marker": p.marker.text if p.marker else None, "note": p.note,
                          "kernel": (p.kernel_slabinfo.label, p.kernel_slabinfo.score(sorted_rows(p.kernel)))
                          if p.kernel_slabinfo else None,
                          "slabinfo": p.kernel.slabinfo()})
        return self.commands.pop(0) if self.commands else Command(Go.QUIT)


def machine(*extra: str):
    args = build_parser().parse_args(["top", *EXCERPT, *extra])
    return time_machine(args)


def test_first_stop_is_where_the_model_has_started():
    s = Script(Command(Go.STEP, 1), Command(Go.STEP, 10))
    machine().run(s)
    first, second, third = s.seen
    assert first["applied"] and first["pos"] > 0 and not first["finished"]
    assert second["pos"] == first["pos"] + 1 and second["line"] > first["line"]
    assert third["pos"] == second["pos"] + 10


def test_to_the_next_marker_and_snapshot():
    s = Script(Command(Go.MARKER), Command(Go.SNAPSHOT), Command(Go.END))
    machine().run(s)
    _, at_marker, at_snapshot, end = s.seen
    assert at_marker["marker"] == "oracle: phase 1 files end" and at_marker["line"] == 29922
    # the snapshot is the kernel's slabinfo as its reader's read generated it: at the reader's buffer
    # allocation (seq_read_iter, line 30118) after the marker, where the replay takes its own
    assert at_snapshot["marker"] == "oracle: snapshot 1-files begin" and at_snapshot["line"] == 30118
    assert at_snapshot["kernel"] == ("oracle-R1-slabinfo.1-files", (484, 484))
    assert at_marker["kernel"] is None
    assert end["finished"] and end["line"] == 30190
    # the kernel's slabinfo of 1-files is still the current one at its end marker, as `kslab replay` compares
    assert end["kernel"] == ("oracle-R1-slabinfo.1-files", (484, 484))


def test_going_back_returns_to_the_state_left():
    s = Script(Command(Go.STEP, 500), Command(Go.END), Command(Go.TO, 0))
    m = machine()
    m.run(s)
    _, left, end, back = s.seen
    assert end["finished"] and m.passes == 2
    assert back["pos"] == s.seen[0]["pos"]  # TO 0: the earliest stop, the same as the first pass's
    s2 = Script(Command(Go.STEP, 500), Command(Go.STEP, 3000), Command(Go.STEP, -3000))
    m2 = machine()
    m2.run(s2)
    _, here, later, again = s2.seen
    assert later["slabinfo"] != here["slabinfo"]
    assert again["pos"] == here["pos"] and again["line"] == here["line"]
    assert again["slabinfo"] == here["slabinfo"] and m2.passes == 2
    assert left["slabinfo"] == here["slabinfo"]  # both passes and both machines agree


def test_back_to_the_previous_marker_and_snapshot():
    s = Script(Command(Go.END), Command(Go.BACK_MARKER), Command(Go.BACK_MARKER), Command(Go.BACK_SNAPSHOT),
               Command(Go.BACK_SNAPSHOT))
    machine().run(s)
    first, end, m1, m2, snap, earliest = s.seen
    assert end["finished"]
    # the end is just after the last marker (1-files end): the previous one is 1-files begin
    assert m1["marker"] == "oracle: snapshot 1-files begin" and m1["line"] == 29926 and not m1["finished"]
    assert m2["marker"] == "oracle: phase 1 files end" and m2["line"] == 29922
    # the snapshot before is 0-start, in the events the replay reads ahead: the earliest stop
    assert snap["pos"] == first["pos"] and snap["line"] < 29922
    assert earliest["pos"] == first["pos"] and "earliest point" in earliest["note"]


def test_back_to_the_previous_snapshot_from_the_end():
    s = Script(Command(Go.END), Command(Go.BACK_SNAPSHOT))
    machine().run(s)
    assert s.seen[-1]["line"] == 30118 and s.seen[-1]["kernel"][0] == "oracle-R1-slabinfo.1-files"


def test_to_a_line_forward_and_back():
    s = Script(Command(Go.LINE, 20000), Command(Go.LINE, 10000))
    machine().run(s)
    _, fwd, back = s.seen
    assert fwd["line"] == 20000 and back["line"] == 10000


def test_forward_at_the_end_says_so():
    s = Script(Command(Go.END), Command(Go.STEP, 1))
    machine().run(s)
    assert s.seen[-1]["finished"] and s.seen[-1]["note"] == "the trace ends here"


def test_kernel_file_template(tmp_path):
    (tmp_path / "k.1-files").write_text((DATA / "oracle-R1-slabinfo.1-files").read_text())
    s = Script(Command(Go.SNAPSHOT))
    machine("--kernel-slabinfo", str(tmp_path / "k.{label}")).run(s)
    assert s.seen[-1]["kernel"][0] == "k.1-files"


def test_bad_snapshot_marker():
    with pytest.raises(ValueError, match="--snapshot-marker"):
        machine("--snapshot-marker", "(")


def test_cache_detail_beside_the_kernel():
    lines: list[str] = []

    def look(p: Point) -> Command:
        if p.kernel_slabinfo is not None and not lines:
            lines.extend(cache_detail(p.kernel, p.kernel.find_cache("dentry"), p.kernel_slabinfo))
        return Command(Go.SNAPSHOT) if not lines else Command(Go.QUIT)

    machine().run(look)
    text = "\n".join(lines)
    assert "kernel  oracle-R1-slabinfo.1-files (line 29926)" in text
    assert "per-CPU arrays (cpu_cache):" in text and "    CPU 0 " in text
    assert "node 0 (CPUs 0): slabs partial" in text and "free_limit" in text and "next_reap" in text
    assert "shared      (none)" in text or "    shared " in text


COMMANDS = st.one_of(
    st.builds(lambda n: Command(Go.STEP, n), st.integers(-3000, 3000).filter(bool)),
    st.builds(lambda n: Command(Go.LINE, n), st.integers(1, 30190)),
    st.sampled_from([Command(Go.MARKER), Command(Go.BACK_MARKER), Command(Go.SNAPSHOT),
                     Command(Go.BACK_SNAPSHOT), Command(Go.END)]),
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMANDS, min_size=2, max_size=6))
def test_any_walk_through_time_sees_one_state_per_point(commands):
    """Whatever way a point is reached (forward, or back by replaying again), the model there is the same."""
    s = Script(*commands)
    machine().run(s)
    seen: dict[tuple[int, bool], str] = {}
    for stop in s.seen:
        key = (stop["pos"], stop["finished"])
        assert seen.setdefault(key, stop["slabinfo"]) == stop["slabinfo"], key
