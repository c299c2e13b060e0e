"""The full-screen view of ``kslab top``: slabtop's table and keys, with time (see docs/top.md).

Plain ``curses`` from the standard library: it is what procps' slabtop itself uses (ncurses), it
works in any terminal, tmux and over ssh with no mouse, and kslab takes no dependency for it.  The
screen is the *controller* of a :class:`~kslab.cli.top_time.TimeMachine`: at each stop it draws the
model and turns keys into commands.
"""

from __future__ import annotations

import contextlib
import curses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..mm.errors import KslabError
from ..report.top import HEADER, SORT_KEYS, render_row, render_summary, sorted_rows, top_summary
from ..report.top_detail import cache_detail
from .top_time import Command, Go, Point

HELP = """kslab top keys (slabtop's, then time's)

  a b c l v n o p s u   sort as slabtop does (either case): active objects, objects per slab,
                        cache size, slabs, active slabs, name, objects, pages per slab,
                        object size, utilisation
  q                     quit                 space   refresh (when running: the next step now)
  Up Down PgUp PgDn     select a cache       Enter   what SLAB holds for it (Enter/Esc: back)

  r                     run / pause the replay (one step every --delay seconds)
  .  ,                  one event on / back      N.  N,   N events on / back (N typed first)
  >  <                  one step on / back (the step is --every events; + and - double, halve it)
  m  M                  on to the next marker / back to the previous one
  ]  [                  on to the next snapshot / back to the previous one
  Ng  G                 to trace line N / to the end of the trace
  !                     check the model's invariants here
  ? h                   this help (any key: back)

Going back replays the trace again from its start up to that point (deterministic)."""

KEY_ENTER = (10, 13, curses.KEY_ENTER)
KEY_BACK = (27, curses.KEY_BACKSPACE, 127, 8, curses.KEY_LEFT)


class View(Enum):
    TABLE = "table"
    CACHE = "cache"
    HELP = "help"


@dataclass
class Settings:
    sort: str = "o"
    delay: int = 3  # seconds between steps while running (slabtop's -d)
    step: int = 2000  # events per step
    lines: int = 0  # at most this many caches in the table (0: as many as fit)
    playing: bool = True
    trace: str = ""  # the trace's name; "" for the machine after boot, with no trace
    timers_run: bool = True  # False when the replay runs cache_reap where the trace shows it


class Screen:
    """Draws a Point and reads keys until one asks the replay to move (the TimeMachine controller)."""

    def __init__(self, stdscr: Any, settings: Settings) -> None:
        self.scr = stdscr
        self.s = settings
        self.view = View.TABLE
        self.selected: str | None = None
        self.top = 0
        self.count = ""
        self.message = ""
        with contextlib.suppress(curses.error):
            curses.curs_set(0)
        stdscr.keypad(True)

    # ---- drawing --------------------------------------------------------------------------------------
    def _put(self, y: int, text: str, attr: int = 0) -> None:
        h, w = self.scr.getmaxyx()
        if 0 <= y < h:
            with contextlib.suppress(curses.error):
                self.scr.addnstr(y, 0, text.ljust(w), w - (1 if y == h - 1 else 0), attr)

    def _state(self, p: Point) -> str:
        if p.finished:
            return "END"
        return f"RUNNING {self.s.step:,} events / {self.s.delay} s" if self.s.playing else "PAUSED"

    def header(self, p: Point) -> list[str]:
        """The lines above the table: where the replay stands, its last marker, the kernel's slabinfo."""
        if not self.s.trace:
            return [f"kslab top - the machine after boot ({p.kernel.nr_cpu_ids} CPUs, {p.kernel.nr_node_ids} "
                    f"nodes) - no trace, nothing to replay", f"jiffies {p.kernel.jiffies}"]
        of = f" of {p.total:,}" if p.total is not None else ""
        ts = f"{int(p.ts)}" if p.ts.is_integer() and p.ts else f"{p.ts:.6f}"  # a counter clock: a count
        lines = [f"kslab top - {self.s.trace} - line {p.lineno:,} - ts {ts} - event {p.pos:,}{of} - "
                 f"{self._state(p)}"]
        m = p.marker
        held = f", {p.held:,} read ahead or held back" if p.held else ""
        lines.append((f"last marker: line {m.lineno:,}: {m.text}" if m else "last marker: none yet")
                     + f"  |  model: {p.applied:,} events applied{held}, jiffies {p.kernel.jiffies}")
        ks = p.kernel_slabinfo
        if ks is not None:
            eq, tot = ks.score(sorted_rows(p.kernel, self.s.sort))
            read = f", read at line {ks.read_line:,}" if ks.read_line else ""
            past = (f", model {p.lineno - ks.read_line:,} lines on"
                    if ks.read_line and p.lineno > ks.read_line else "")
            star = " (* : differs)" if eq < tot else ""
            lines.append(f"kernel: {ks.label} (marker line {ks.lineno:,}{read}{past}): {eq}/{tot} cells equal{star}")
        elif p.waiting:
            lines.append(f"kernel: {p.waiting} is the kernel at its reader's read of /proc/slabinfo, which has "
                         "not come yet")
        else:
            lines.append("kernel: no /proc/slabinfo of the kernel at this point of the trace")
        return lines

    def draw(self, p: Point) -> None:
        self.scr.erase()
        h, _ = self.scr.getmaxyx()
        y = 0
        for line in self.header(p):
            self._put(y, line)
            y += 1
        if self.view is View.HELP:
            for line in HELP.splitlines():
                self._put(y, line)
                y += 1
        elif self.view is View.CACHE:
            self._draw_cache(p, y)
        else:
            self._draw_table(p, y)
        count = f"  count: {self.count}" if self.count else ""
        status = self.message or p.note or ("Enter/Esc: back to the table" if self.view is View.CACHE else
                                            "q quit  r run/pause  . , step  m M marker  ] [ snapshot  "
                                            "Enter cache  ? help")
        self._put(h - 1, status + count, curses.A_REVERSE)
        self.scr.refresh()

    def _draw_table(self, p: Point, y: int) -> None:
        h, _ = self.scr.getmaxyx()
        rows = sorted_rows(p.kernel, self.s.sort)
        for line in [*render_summary(top_summary(rows)), ""]:
            self._put(y, line)
            y += 1
        self._put(y, HEADER, curses.A_REVERSE)
        y += 1
        if self.s.lines:
            rows = rows[: self.s.lines]
        names = [d.name for d in rows]
        if self.selected not in names:
            self.selected = names[0] if names else None
        room = max(1, h - 1 - y)
        sel = names.index(self.selected) if self.selected in names else 0
        self.top = min(max(self.top, sel - room + 1), sel, max(0, len(rows) - room))
        self.top = max(0, self.top)
        kern = p.kernel_slabinfo
        for d in rows[self.top: self.top + room]:
            mark = " *" if kern is not None and kern.differs(d) else ""
            self._put(y, render_row(d) + mark, curses.A_REVERSE if d.name == self.selected else 0)
            y += 1

    def _draw_cache(self, p: Point, y: int) -> None:
        c = p.kernel.find_cache(self.selected) if self.selected else None
        if c is None:
            self._put(y + 1, f"  the cache {self.selected!r} does not exist at this point")
            return
        for line in cache_detail(p.kernel, c, p.kernel_slabinfo, self.s.timers_run):
            self._put(y, line)
            y += 1

    # ---- keys ---------------------------------------------------------------------------------------
    def _move(self, p: Point, delta: int | None, to_end: bool = False) -> None:
        rows = sorted_rows(p.kernel, self.s.sort)
        if self.s.lines:
            rows = rows[: self.s.lines]
        names = [d.name for d in rows]
        if not names:
            return
        i = names.index(self.selected) if self.selected in names else 0
        i = (len(names) - 1 if to_end else 0) if delta is None else min(max(0, i + delta), len(names) - 1)
        self.selected = names[i]

    def _count(self, default: int) -> int:
        n = int(self.count) if self.count else default
        self.count = ""
        return n

    def key(self, ch: int, p: Point) -> Command | None:
        """One key: a Command for the replay, or None when only the screen changes."""
        self.message = ""
        if self.view is View.HELP:
            self.view = View.TABLE
            return None
        c = chr(ch) if 0 <= ch < 0x110000 else ""
        if c in ("q", "Q"):
            return Command(Go.QUIT)
        if c.isdigit():
            self.count = (self.count + c)[-9:]
            return None
        if self.view is View.CACHE and (ch in KEY_BACK or ch in KEY_ENTER):
            self.view = View.TABLE
            return None
        if ch in KEY_ENTER:
            self.view = View.CACHE if self.selected else View.TABLE
            return None
        if ch == 27:
            self.count = ""
            return None
        if c.lower() in SORT_KEYS:
            self.s.sort = c.lower()
            return None
        return self._time_key(ch, c, p)

    def _time_key(self, ch: int, c: str, p: Point) -> Command | None:
        moves = {curses.KEY_UP: -1, curses.KEY_DOWN: 1, curses.KEY_PPAGE: -10, curses.KEY_NPAGE: 10}
        if ch in moves:
            self._move(p, moves[ch])
            return None
        if ch in (curses.KEY_HOME, curses.KEY_END):
            self._move(p, None, to_end=ch == curses.KEY_END)
            return None
        simple = {"m": Go.MARKER, "M": Go.BACK_MARKER, "]": Go.SNAPSHOT, "[": Go.BACK_SNAPSHOT, "G": Go.END}
        if c in simple:
            self.count = ""
            return Command(simple[c])
        steps = {".": 1, ",": -1}
        if c in steps:
            return Command(Go.STEP, steps[c] * self._count(1))
        if c in (">", "<"):
            return Command(Go.STEP, (1 if c == ">" else -1) * self._count(self.s.step))
        if c == "g":
            return Command(Go.LINE, self._count(1))
        if c in ("+", "-"):
            self.s.step = max(1, self.s.step * 2 if c == "+" else self.s.step // 2)
            return None
        if c == "r":
            self.s.playing = not self.s.playing and not p.finished
            return Command(Go.STEP, self.s.step) if self.s.playing else None
        if c in ("?", "h"):
            self.view = View.HELP
            return None
        if c == "!":
            try:
                p.kernel.check()
                self.message = f"the model's invariants hold at line {p.lineno:,}"
            except KslabError as e:
                self.message = f"invariant broken: {e}"
            return None
        if c == " " and self.s.playing and not p.finished:
            return Command(Go.STEP, self.s.step)
        return None  # space while paused (a redraw), a resize, an unknown key

    def __call__(self, p: Point) -> Command:
        if p.finished:
            self.s.playing = False
        while True:
            self.draw(p)
            self.scr.timeout(self.s.delay * 1000 if self.s.playing else -1)
            ch = self.scr.getch()
            if ch == -1:
                if self.s.playing:
                    return Command(Go.STEP, self.s.step)
                continue
            cmd = self.key(ch, p)
            if cmd is not None:
                if cmd.go is not Go.QUIT:
                    h, _ = self.scr.getmaxyx()
                    self._put(h - 1, "replaying ... (going back replays the trace from its start)", curses.A_REVERSE)
                    self.scr.refresh()
                return cmd
