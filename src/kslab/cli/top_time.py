"""Time for ``kslab top``: a replay that stops where its user asks, goes on, and goes back.

The replay is driven only through :class:`~kslab.trace.replay.Replayer`'s public API: it is built, and
``run()`` is given a generator of the trace's events.  The generator is where time is controlled:
before it hands the replay the next event, it may stop and ask a *controller* (the screen) what to do,
while the model stands still at "every event up to here handed to the replay".  Going back replays
the trace again from its start, deterministically, up to the asked-for point (a replay holds no state
that could be rewound: see docs/top.md for the measurements behind this choice).

Two things the replay does keep the model from following each event one for one, and the stops say so
rather than hide them: ``run()`` reads its first events ahead before it applies any (to see whether
the trace shows the boot), so no stop is offered before the model has applied an event; and the
replay holds some events back to put them in the kernel's order (interrupts, races), so at a stop a
few events handed over may not be applied yet (``Point.held``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ..report.top_detail import KernelSlabinfo
from ..trace.events import ALLOC_KINDS, MARK, TraceEvent
from ..trace.replay import site_function
from ..trace.slabinfo_parse import parse_slabinfo

if TYPE_CHECKING:
    from ..mm.kernel import Kernel
    from ..trace.replay import Replayer, ReplaySummary


class Go(Enum):
    """What the controller asks for at a stop."""

    STEP = "step"  # n events on (n >= 1), or back (n <= -1)
    TO = "to"  # to the point after n events were handed over (forward or back)
    LINE = "line"  # to the first stop at or after trace line n (forward or back)
    MARKER = "marker"  # on to the next marker
    SNAPSHOT = "snapshot"  # on to the next snapshot (a marker with the kernel's /proc/slabinfo, or the sync)
    BACK_MARKER = "back-marker"  # back to the stop after the previous marker
    BACK_SNAPSHOT = "back-snapshot"  # back to the stop after the previous snapshot
    END = "end"  # to the end of the trace
    QUIT = "quit"


@dataclass(frozen=True)
class Command:
    go: Go
    n: int = 0
    settle: bool = False  # TO: then on until the replay holds nothing back (at most SETTLE_LIMIT events)


#: how far a snapshot stop goes on past its read, waiting for the replay to apply what it holds back
SETTLE_LIMIT = 4096


@dataclass
class Marker:
    pos: int  # events handed over up to and including the marker
    lineno: int
    text: str
    snapshot: bool


@dataclass
class Point:
    """Where the replay stands at a stop."""

    kernel: Kernel
    summary: ReplaySummary
    pos: int  # events handed to the replay so far
    lineno: int  # the trace line of the last one (0 before any)
    ts: float
    marker: Marker | None  # the last marker handed over
    kernel_slabinfo: KernelSlabinfo | None  # the kernel's /proc/slabinfo, where the trace has it here
    finished: bool  # the trace is over and the replay finished (held events applied)
    total: int | None  # events in the trace, once a pass has reached its end
    note: str = ""  # what the last command came to, when not what was asked ("no earlier snapshot")
    waiting: str = ""  # a kernel slabinfo whose marker has come, but not yet its reader's read

    @property
    def applied(self) -> int:
        """Events the replay has applied or skipped with a reason (its summary's count)."""
        return self.summary.accounted()

    @property
    def held(self) -> int:
        """Events handed over but not applied yet: read ahead, or held back for the kernel's order."""
        return max(0, self.pos - self.applied) if not self.finished else 0


#: the functions whose allocation is a reader's read(2) of /proc/slabinfo starting (the seq_file buffer)
READ_SITES = frozenset({"seq_read_iter", "seq_read"})


@dataclass
class _PassState:
    """Where one pass stands: events handed over, the last one, the last marker, the kernel's slabinfo
    current here, and a snapshot marker waiting for its read (the kernel's slabinfo, or just the marker)."""

    pos: int = 0
    last: TraceEvent | None = None
    marker: Marker | None = None
    kernel: KernelSlabinfo | None = None
    pending: KernelSlabinfo | Marker | None = None


class _Rewind(Exception):
    def __init__(self, goal: Command) -> None:
        super().__init__(goal)
        self.goal = goal


class _Quit(Exception):
    pass


@dataclass
class KernelFiles:
    """Where the kernel's own /proc/slabinfo is known: the sync's start slabinfo at the --sync-on
    marker, and ``slabinfo.LABEL`` files for the markers that ``snapshot_re`` matches (group 1: LABEL)."""

    snapshot_re: re.Pattern[str]
    find: Callable[[str], Path | None]  # LABEL -> the kernel's file, if there is one
    sync_re: re.Pattern[str] | None = None
    start_slabinfo: Path | None = None
    _parsed: dict[Path, dict[str, dict[str, int]]] = field(default_factory=dict)

    def rows(self, path: Path) -> dict[str, dict[str, int]]:
        if path not in self._parsed:
            self._parsed[path] = parse_slabinfo(path.read_text(encoding="utf-8", errors="replace"), str(path))
        return self._parsed[path]

    def at_marker(self, ev: TraceEvent) -> tuple[bool, KernelSlabinfo | None]:
        """(whether the marker is a snapshot, the kernel's slabinfo there if known)."""
        m = self.snapshot_re.search(ev.text)
        if m:
            label = m.group(1) if m.groups() else ""
            path = self.find(label) if label else None
            if path is not None:
                return True, KernelSlabinfo(path.name, ev.lineno, self.rows(path))
        if self.sync_re is not None and self.start_slabinfo is not None and self.sync_re.search(ev.text):
            return True, KernelSlabinfo(f"{self.start_slabinfo.name} (the sync)", ev.lineno,
                                        self.rows(self.start_slabinfo))
        return m is not None, None


def still_current(kernel: KernelSlabinfo, ev: TraceEvent) -> bool:
    """A kernel snapshot stays current until a marker that does not name it ('snapshot X begin' ...
    'snapshot X end' bracket the read of /proc/slabinfo)."""
    label = kernel.label.split(" ")[0].rsplit("slabinfo.", 1)[-1]
    return bool(label) and label in ev.text


class TimeMachine:
    """Runs replays of one trace and stops them where ``controller`` asks (see the module docstring)."""

    def __init__(self, make: Callable[[], Replayer], events: Callable[[], Iterable[TraceEvent]],
                 files: KernelFiles) -> None:
        self.make = make
        self.events = events
        self.files = files
        self.markers: dict[int, Marker] = {}  # pos -> marker, from every pass (passes are identical)
        self.total: int | None = None
        self.passes = 0
        self.first_stop: int | None = None  # where every pass can first stop (the same in each)
        self._goal = Command(Go.STEP, 1)
        self._since = 0  # markers (snapshots) handed over since the goal was set
        self._since_snap = 0
        self._note = ""
        self.snapshots: set[int] = set()  # positions where a snapshot (or the sync) was taken
        self._snap_pos = 0

    # ---- the controller's view --------------------------------------------------------------------
    def _point(self, rep: Replayer, st: _PassState, finished: bool) -> Point:
        note, self._note = self._note, ""
        last = st.last
        waiting = st.pending.label if isinstance(st.pending, KernelSlabinfo) else ""
        return Point(rep.k, rep.summary, st.pos, last.lineno if last else 0, last.ts if last else 0.0,
                     st.marker, st.kernel, finished, self.total, note, waiting)

    def _earlier(self, pos: int, snapshot: bool) -> int | None:
        """The position just after the last marker (snapshot) before ``pos`` that a stop can reach."""
        best = None
        for p in (self.snapshots if snapshot else self.markers):
            if p < pos and (best is None or p > best):
                best = p
        return best

    def _decide(self, cmd: Command, pos: int, lineno: int) -> bool:
        """Take a command at ``pos``: True when it needs the replay to move on (else ask again);
        raises _Rewind or _Quit."""
        go = cmd.go
        if go is Go.QUIT:
            raise _Quit
        if go is Go.STEP:
            cmd = Command(Go.TO, pos + cmd.n)
            go = Go.TO
        if go in (Go.BACK_MARKER, Go.BACK_SNAPSHOT):
            p = self._earlier(pos, go is Go.BACK_SNAPSHOT)
            if p is None:
                self._note = "no earlier " + ("snapshot" if go is Go.BACK_SNAPSHOT else "marker") + " is known"
                return False
            cmd = Command(Go.TO, p, settle=go is Go.BACK_SNAPSHOT)
            go = Go.TO
        if go is Go.TO:
            target = max(0, cmd.n)
            if target < pos and pos == self.first_stop:
                self._note = (f"this is the earliest point: the replay reads its first {pos:,} events before it "
                              "applies any")
                return False
            if target < pos:
                raise _Rewind(Command(Go.TO, target, cmd.settle))
            if target == pos:
                return False
        if go is Go.LINE:
            if cmd.n < lineno:
                raise _Rewind(cmd)
            if cmd.n == lineno:
                return False
        self._goal = cmd
        self._since = self._since_snap = 0
        return True

    def _reached(self, rep: Replayer, pos: int, lineno: int) -> bool:
        """Whether the goal is reached at ``pos`` (called before every event: the cheap tests first)."""
        goal = self._goal
        go = goal.go
        if go is Go.TO:
            settle_from = goal.n if goal.settle else -1
            if pos < goal.n:
                return False
        elif go is Go.LINE:
            settle_from = -1
            if lineno < goal.n:
                return False
        elif go is Go.MARKER:
            settle_from = -1
            if not self._since:
                return False
        elif go is Go.SNAPSHOT:
            # at the read, once the replay has applied what it holds back (so that it has taken its own)
            settle_from = self._snap_pos
            if not self._since_snap:
                return False
        else:
            return False  # END
        applied = rep.summary.accounted()
        if not applied:
            return False  # the replay is still reading ahead: the model has not started
        return settle_from < 0 or applied >= pos or pos - settle_from >= SETTLE_LIMIT

    # ---- one pass ---------------------------------------------------------------------------------
    def _see(self, st: _PassState, ev: TraceEvent) -> None:
        """Follow markers and snapshots on an event's way into the replay (st.pos counts it already).

        A snapshot (and the sync) is the kernel's /proc/slabinfo as its reader's read(2) generated it:
        the replay takes its own at the reader's buffer allocation (seq_read_iter) after the marker, or at
        the next marker if no read comes first; the kernel's becomes current at the same point."""
        if ev.kind == MARK:
            if st.pending is not None:
                self._snapshot_taken(st)
            snap, found = self.files.at_marker(ev)
            if st.kernel is not None and not still_current(st.kernel, ev):
                st.kernel = None
            st.marker = self.markers.setdefault(st.pos, Marker(st.pos, ev.lineno, ev.text, snap))
            self._since += 1
            if snap:
                st.pending = found or st.marker
        elif st.pending is not None and ev.kind in ALLOC_KINDS and site_function(ev.call_site) in READ_SITES:
            self._snapshot_taken(st)

    def _snapshot_taken(self, st: _PassState) -> None:
        if isinstance(st.pending, KernelSlabinfo):
            st.kernel = replace(st.pending, read_line=st.last.lineno if st.last is not None else 0)
        st.pending = None
        self.snapshots.add(st.pos)
        self._since_snap += 1
        self._snap_pos = st.pos

    def _pass(self, rep: Replayer, controller: Callable[[Point], Command], st: _PassState) -> Iterator[TraceEvent]:
        for ev in self.events():
            lineno = st.last.lineno if st.last is not None else 0
            if self._reached(rep, st.pos, lineno):
                if self.first_stop is None:
                    self.first_stop = st.pos
                while not self._decide(controller(self._point(rep, st, False)), st.pos, lineno):
                    pass
            st.last = ev
            st.pos += 1
            self._see(st, ev)
            yield ev
        self.total = st.pos

    def run(self, controller: Callable[[Point], Command], start: Command | None = None) -> None:
        """Replay, stopping as ``controller`` asks, until it asks to quit."""
        start = start or Command(Go.STEP, 1)
        self._goal = Command(Go.TO, start.n) if start.go is Go.STEP else start
        while True:
            rep = self.make()
            self.passes += 1
            st = _PassState()
            try:
                rep.run(self._pass(rep, controller, st))
            except _Rewind as r:
                self._goal = r.goal
                continue
            except _Quit:
                return
            if st.pending is not None:
                self._snapshot_taken(st)  # the replay's finish() takes a snapshot still waiting for its read
            lineno = st.last.lineno if st.last is not None else 0
            try:
                while True:
                    if self._decide(controller(self._point(rep, st, True)), st.pos, lineno):
                        self._note = "the trace ends here"
            except _Rewind as r:
                self._goal = r.goal
            except _Quit:
                return
