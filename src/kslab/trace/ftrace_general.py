"""The general (slower, careful) code of the text-trace parser :mod:`kslab.trace.ftrace`.

What the parser's fast path does not recognise comes here: the line prefixes not yet cached
(``comm-pid [cpu] flags ts:`` in the ftrace, trace-cmd and perf layouts), headers, lost-event and
stack-trace lines, odd fields; this code also names the problem of a malformed line (:class:`BadLine`).
It holds the per-input parse state (:class:`ParseState`: the caches the fast path reads) and the
counts of :class:`ParseStats`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from kslab.mm.gfp import parse_gfp_flags
from kslab.trace.events import (
    FUNC,
    KFREE,
    KIND_NAMES,
    KMALLOC,
    KMALLOC_NODE,
    KMEM_CACHE_ALLOC,
    KMEM_CACHE_ALLOC_NODE,
    KMEM_CACHE_FREE,
    MARK,
    MM_PAGE_ALLOC,
    MM_PAGE_FREE,
    MM_PAGE_FREE_BATCHED,
    TraceEvent,
)

# Prefix caches are dropped when they grow past this many entries (fork-heavy traces have many
# distinct comm-pid pairs; the cache only saves time, it never changes a result).
CACHE_LIMIT: Final = 100_000


@dataclass
class ParseStats:
    """Counts kept by :func:`iter_events`.

    Invariant, once iteration has ended (exhausted, closed or raised):
    ``lines == events + header + sum(skipped.values())``.  The counts are also brought up to date
    after every chunk of input, so they may be read during iteration (lagging by at most a chunk).
    """

    #: Lines read (the line that raised TraceParseError is not counted).
    lines: int = 0
    #: TraceEvents produced.
    events: int = 0
    #: Comment, blank and preamble lines (``#...``, ``cpus=N``, ``version = 6``, ...).
    header: int = 0
    #: Lines not turned into events, by reason: ``other event: NAME``, ``lost events``,
    #: ``stack trace``, ``other tracer: function_graph``, and ``malformed: ...`` (skip_bad only).
    skipped: Counter[str] = field(default_factory=Counter)
    #: Line layouts seen: ``ftrace``, ``ftrace+irq-info``, ``ftrace+tgid+irq-info``, ``trace-cmd``,
    #: ``trace-cmd+irq-info``, ``trace-cmd-latency``, ``perf-script``.
    formats_seen: set[str] = field(default_factory=set)
    #: Time-stamp styles seen: ``seconds`` (``123.456789``) and/or ``counter`` (an integer).
    clocks_seen: set[str] = field(default_factory=set)
    #: Sum of the counts of the ``CPU:N [LOST M EVENTS]`` lines (and trace-cmd's ``EVENTS DROPPED``).
    lost_events: int = 0
    #: Events produced, by kind name (``kmalloc``, ..., ``mark``, ``func``).
    by_kind: Counter[str] = field(default_factory=Counter)
    #: gfp flag names that ``kslab.mm.gfp`` does not know (ignored when computing ``gfp``).
    unknown_gfp_flags: set[str] = field(default_factory=set)

    @property
    def consistent(self) -> bool:
        """True when ``lines == events + header + sum(skipped)``."""
        return self.lines == self.events + self.header + sum(self.skipped.values())



class BadLine(Exception):
    """Internal: the current line is malformed; ``args[0]`` is the reason."""




# The part of a line before the time stamp, for the layouts with a ``[cpu]`` column.
_FTRACE_KEY = re.compile(
    r"\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\((?P<tgid>\s*[-\d]+)\)\s+)?\[(?P<cpu>\d+)\]"
    r"(?:\s+(?P<flags>\S+))?\s*"
)
_PERF_KEY = re.compile(r"\s*(?P<comm>.*?)\s+(?P<pid>\d+)(?:/(?P<tid>\d+))?\s+\[(?P<cpu>\d+)\]\s*")
# Whole lines, for what the fast path cannot split (comm containing "] " or ": ", trace-cmd -l).
_FTRACE_LINE = re.compile(
    r"\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\((?P<tgid>\s*[-\d]+)\)\s+)?\[(?P<cpu>\d+)\]"
    r"(?:\s+(?P<flags>\S+))?\s+(?P<ts>\d+(?:\.\d+)?):(?: (?P<payload>.*))?"
)
_TCMD_LATENCY_LINE = re.compile(
    r"\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?P<cpu>\d+)(?P<flags>[^\s\d]\S*)\s+(?P<ts>\d+(?:\.\d+)?):"
    r"(?: (?P<payload>.*))?"
)
_PERF_LINE = re.compile(
    r"\s*(?P<comm>.*?)\s+(?P<pid>\d+)(?:/(?P<tid>\d+))?\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<ts>\d+(?:\.\d+)?):(?: (?P<payload>.*))?"
)
_PREAMBLE = re.compile(r"\s*(?:cpus=\d+|version\s*=\s*\d+|CPU \d+ is empty|-{10,})\s*")
_LOST = re.compile(
    r"\s*CPU:\s*\d+ \[(?:LOST (?P<lost>\d+) EVENTS|(?P<dropped>\d+) EVENTS DROPPED|EVENTS DROPPED)\]\s*"
)
_FUNCTION_GRAPH = re.compile(r"\s*(?:\d+\.\d+\s+\|\s+)?\d+\)\s")
_HAS_CPU = re.compile(r"\[\d+\]")
# The irq-info flags column's third character: the context the line was written in (events.py).
_IRQ_CONTEXT = {"s": 1, "h": 2, "H": 2, "z": 3, "Z": 3}


def _irq_context(flags: str | None) -> int:
    """0 task, 1 softirq, 2 hardirq, 3 NMI, from an irq-info flags column (0 without one)."""
    if not flags or len(flags) < 3:
        return 0
    return _IRQ_CONTEXT.get(flags[2], 0)
_HAS_TIMESTAMP = re.compile(r"\]\s+(?:\S+\s+)?\d+(?:\.\d+)?: ")
_TIMESTAMP = re.compile(r"\d+(?:\.\d+)?")
_HEX_ADDR = re.compile(r"(?:0x)?[0-9a-fA-F]+")

# Event names (as printed before ": ") of the kinds we produce.
_EVENT_KINDS: Final[dict[str, int]] = {
    "kmalloc": KMALLOC,
    "kmalloc_node": KMALLOC_NODE,
    "kmem_cache_alloc": KMEM_CACHE_ALLOC,
    "kmem_cache_alloc_node": KMEM_CACHE_ALLOC_NODE,
    "kfree": KFREE,
    "kmem_cache_free": KMEM_CACHE_FREE,
    "mm_page_alloc": MM_PAGE_ALLOC,
    "mm_page_free": MM_PAGE_FREE,
    "mm_page_free_batched": MM_PAGE_FREE_BATCHED,
    "tracing_mark_write": MARK,
    "print": MARK,  # trace-cmd and perf name the marker event
    "function": FUNC,  # trace-cmd and perf name the function tracer's entries
}


class ParseState:
    """Per-input parse state: caches and the layout facts found so far."""

    __slots__ = ("prefixes", "gfp", "tails", "kinds", "others", "stats", "trace_cmd")

    def __init__(self, stats: ParseStats) -> None:
        #: prefix text (everything before the time stamp) -> (comm, pid, cpu, irq)
        self.prefixes: dict[str, tuple[str, int, int, int]] = {}
        #: gfp_flags text -> value
        self.gfp: dict[str, int] = {}
        #: per kind: the fields after ptr=/pfn= -> parsed values (see tail_values)
        self.tails: list[dict[str, tuple[Any, ...]]] = [{} for _ in KIND_NAMES]
        #: event name as printed -> kind; names of other events -> skip reason
        self.kinds: dict[str, int] = dict(_EVENT_KINDS)
        self.others: dict[str, str] = {}
        self.stats = stats
        self.trace_cmd = False

    def layout(self, flags: str | None, tgid: str | None) -> str:
        """Record and return the name of a ``[cpu]`` layout."""
        name = "trace-cmd" if self.trace_cmd else "ftrace"
        if tgid is not None:
            name += "+tgid"
        if flags:
            name += "+irq-info"
        self.stats.formats_seen.add(name)
        return name

    def parse_prefix(self, key: str) -> tuple[str, int, int, int] | None:
        """Parse (and cache) the text before a time stamp; None if it is no known prefix."""
        if not key or key[0] == "#" or len(key) > 200:
            return None
        m = _FTRACE_KEY.fullmatch(key)
        if m is not None:
            self.layout(m["flags"], m["tgid"])
            who = (m["comm"].strip(), int(m["pid"]), int(m["cpu"]), _irq_context(m["flags"]))
        else:
            m = _PERF_KEY.fullmatch(key)
            if m is None:
                return None
            self.stats.formats_seen.add("perf-script")
            who = (m["comm"].strip(), int(m["tid"] or m["pid"]), int(m["cpu"]), 0)
        if len(self.prefixes) >= CACHE_LIMIT:
            self.prefixes.clear()
        self.prefixes[key] = who
        return who

    def resolve_kind(self, raw: str) -> int:
        """Kind of an event name as printed (perf's ``kmem:kmalloc``, padded names...); -1 if
        it is no event of ours, the skip reason then being in ``self.others[raw]``."""
        name = raw.strip()
        if " " in name:  # perf may print a sample period before the name
            name = name.rsplit(" ", 1)[1]
        if ":" in name:  # perf's subsystem prefix
            name = name.rsplit(":", 1)[1]
        kind = _EVENT_KINDS.get(name)
        if kind is None:
            self.others[raw] = f"other event: {name}"
            return -1
        self.kinds[raw] = kind
        return kind

    def gfp_value(self, text: str) -> int:
        """Value of a gfp_flags text (cached), by ``kslab.mm.gfp.parse_gfp_flags``; names it does
        not know (flags of newer kernels) are recorded in the stats and contribute nothing."""
        try:
            value = parse_gfp_flags(text)
        except ValueError:
            value = 0
            for part in text.split("|"):
                try:
                    value |= parse_gfp_flags(part)
                except ValueError:
                    self.stats.unknown_gfp_flags.add(part)
        if len(self.gfp) >= CACHE_LIMIT:
            self.gfp.clear()
        self.gfp[text] = value
        return value


def slow_line(line: str, state: ParseState) -> tuple[Any, ...]:
    """Classify a line the fast path could not handle.

    Returns ``("event", comm, pid, cpu, irq, ts_text, payload_start)``, ``("header",)``,
    ``("lost", n)`` or ``("skip", reason)``; raises BadLine.
    """
    stripped = line.strip()
    if not stripped or line[0] == "#":
        return ("header",)
    if stripped.startswith("=>"):  # the lines of a stack trace (stacktrace option or trigger)
        return ("skip", "stack trace")
    if len(line) > 8192:  # no kernel prints such lines; keep the regexes below linear
        binary = "\x00" in line or "\ufffd" in line
        raise BadLine("malformed: binary data" if binary else "malformed: line too long")
    if _PREAMBLE.fullmatch(line):
        if stripped.startswith("cpus="):
            state.trace_cmd = True
        return ("header",)
    m = _LOST.fullmatch(line)
    if m is not None:
        return ("lost", int(m["lost"] or m["dropped"] or 0))
    if _FUNCTION_GRAPH.match(line):
        return ("skip", "other tracer: function_graph")
    # The fast path's split, with the prefix not yet in the cache.
    colon = line.find(": ")
    if colon < 0 and line.endswith(":"):
        colon = len(line) - 1
    if colon > 0:
        sp = line.rfind(" ", 0, colon)
        who = state.parse_prefix(line[:sp]) if sp > 0 else None
        if who is not None:
            ts_text = line[sp + 1 : colon]
            if not _TIMESTAMP.fullmatch(ts_text):
                raise BadLine("malformed: bad timestamp")
            return ("event", *who, ts_text, colon + 2)
    layouts = ((_FTRACE_LINE, None), (_TCMD_LATENCY_LINE, "trace-cmd-latency"), (_PERF_LINE, "perf-script"))
    for regex, fmt in layouts:
        m = regex.fullmatch(line)
        if m is not None:
            if fmt is None:
                state.layout(m["flags"], m["tgid"])
            else:
                state.stats.formats_seen.add(fmt)
            pid = m["pid"] if fmt != "perf-script" else (m["tid"] or m["pid"])
            start = m.start("payload") if m["payload"] is not None else len(line)
            irq = _irq_context(m["flags"]) if fmt != "perf-script" else 0
            return ("event", m["comm"].strip(), int(pid), int(m["cpu"]), irq, m["ts"], start)
    if "\x00" in line or "\ufffd" in line:
        raise BadLine("malformed: binary data")
    if _HAS_CPU.search(line) is None:
        raise BadLine("malformed: no cpu field")
    if _HAS_TIMESTAMP.search(line) is None:
        raise BadLine("malformed: no timestamp")
    raise BadLine("malformed: bad prefix")


def _fields(text: str) -> dict[str, str]:
    """``key=value`` pairs of an event's fields; a word without ``=`` continues the previous
    value (``call_site=ext4_foo+0x10/0x20 [ext4]``, ``ptr=  (null)``)."""
    out: dict[str, str] = {}
    key = ""
    for word in text.split():
        k, eq, v = word.partition("=")
        if eq and k:
            out[k] = v
            key = k
        elif key:
            out[key] = f"{out[key]} {word}" if out[key] else word
        else:
            raise BadLine("malformed: text before the first field")
    return out


def _get(fields: dict[str, str], key: str) -> str:
    try:
        return fields[key]
    except KeyError:
        raise BadLine(f"malformed: missing {key}") from None


def _int(fields: dict[str, str], key: str, default: int | None = None) -> int:
    """A decimal field (``0x`` hex accepted)."""
    if default is not None and key not in fields:
        return default
    text = _get(fields, key)
    try:
        return int(text, 16) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        raise BadLine(f"malformed: bad number in {key}") from None


def _ptr(fields: dict[str, str], key: str) -> int:
    """A pointer field: hex with or without ``0x``; ``(null)`` (old kernels) and ``(nil)``
    (user-space printf) are 0."""
    text = _get(fields, key)
    if text in ("(null)", "(nil)"):
        return 0
    try:
        return int(text, 16)
    except ValueError:
        raise BadLine(f"malformed: bad pointer in {key}") from None


def _bool(fields: dict[str, str], key: str) -> bool | None:
    text = fields.get(key)
    if text is None:
        return None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise BadLine(f"malformed: bad boolean in {key}")


def after_spaces(line: str, i: int) -> int:
    """Index of the first non-blank character of ``line`` at or after ``i``."""
    return len(line) - len(line[i:].lstrip())


def strip_offset(symbol: str) -> str:
    """``func+0x1c/0x80`` -> ``func``."""
    plus = symbol.find("+")
    return symbol[:plus] if plus > 0 else symbol


def print_text(text: str) -> str:
    """Marker text of a ``print`` event (trace-cmd, perf): drop the leading ``ip: ``."""
    colon = text.find(": ")
    if colon > 0:
        head = text[:colon]
        if head == "tracing_mark_write" or _HEX_ADDR.fullmatch(head):
            return text[colon + 2 :]
    return text


def _function_fields(text: str) -> tuple[str, str]:
    """(function, parent) of a function-tracer entry as printed after ``function:`` (trace-cmd's
    ``func <-- parent``, or perf's ``ip=... parent_ip=...``)."""
    text = text.strip()
    if text.startswith("ip="):
        f = _fields(text)
        return strip_offset(_get(f, "ip")), f.get("parent_ip", "")
    func, sep, parent = text.partition(" <-- ")
    if not sep:
        func, _, parent = text.partition(" <-")
    func = func.strip()
    if not func or " " in func:
        raise BadLine("malformed: bad function entry")
    return strip_offset(func), parent.strip()


def _split_name(text: str) -> tuple[str, str | None]:
    """Cut the ``name=`` field off, which runs to the end of the line (a cache name)."""
    if text.startswith("name="):
        return "", text[5:]
    at = text.find(" name=")
    if at < 0:
        return text, None
    return text[:at], text[at + 6 :]


def _gfp(fields: dict[str, str], state: ParseState) -> int:
    text = _get(fields, "gfp_flags")
    value = state.gfp.get(text)
    return state.gfp_value(text) if value is None else value


def _kmem_values(kind: int, f: dict[str, str], name: str | None, state: ParseState) -> tuple[Any, ...]:
    """The TraceEvent arguments after ``ptr`` of a kmem event, from its other fields."""
    if kind <= KMEM_CACHE_ALLOC_NODE:
        if kind in (KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE) and "node" not in f:
            raise BadLine("malformed: missing node")
        return (
            _int(f, "bytes_req"), _int(f, "bytes_alloc"), _gfp(f, state), _int(f, "node", -1),
            name, _bool(f, "accounted"), -1, -1, -1, "", "",
        )
    return (0, 0, 0, -1, name, None, -1, -1, -1, "", "")


def _page_values(kind: int, f: dict[str, str], state: ParseState) -> tuple[int, int, int]:
    """(gfp, order, migratetype) of a page allocator event, from its other fields."""
    if kind == MM_PAGE_ALLOC:
        return _gfp(f, state), _order(f, None), _int(f, "migratetype")
    return 0, _order(f, 0 if kind == MM_PAGE_FREE_BATCHED else None), -1


def _order(fields: dict[str, str], default: int | None) -> int:
    """The ``order`` field: 2**order pages must fit a 64-bit address space (no kernel prints more than 10)."""
    order = _int(fields, "order", default)
    if not 0 <= order < 64:
        raise BadLine("malformed: impossible order")
    return order


def tail_values(kind: int, tail: str, state: ParseState) -> tuple[Any, ...]:
    """Parse (and cache) the fields after ``ptr=``/``pfn=`` of a kmem/page event."""
    cache = state.tails[kind]
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    values: tuple[Any, ...]
    if kind <= KMEM_CACHE_FREE:
        rest, name = _split_name(tail)
        values = _kmem_values(kind, _fields(rest), name, state)
    else:
        values = _page_values(kind, _fields(tail), state)
    cache[tail] = values
    return values


def kmem_head(text: str, state: ParseState) -> tuple[int, str, Callable[[str], Any]] | None:
    """(kind, call_site, ``get`` of the kind's cache of tails) of the start ``NAME: call_site=SYM`` of
    a kmem event (everything before `` ptr=``), as the general code of ``_iter_events`` reads it; None
    for anything else."""
    e = text.find(": ")
    if e <= 0:
        return None
    kind = state.kinds.get(text[:e])
    if kind is None or kind > KMEM_CACHE_FREE or not text.startswith("call_site=", e + 2):
        return None
    return kind, text[e + 12 :], state.tails[kind].get  # (the caches are cleared, never replaced)


def func_entry(text: str) -> tuple[str, str] | None:
    """(function, parent) of a function-tracer entry ``func <-parent`` (or ``func``), as the general
    code of ``_iter_events`` reads it; None for anything it would not turn into a FUNC event as it is."""
    if ": " in text or (text.endswith(":") and len(text) > 1):
        return None
    i = text.find(" <-")
    if i >= 0:
        func = text[:i]
        parent = text[i + 3 :]
    elif " " not in text and text:
        func = text
        parent = ""
    else:
        return None
    if "+" in func:
        func = strip_offset(func)
    return func, parent


def try_tail_values(kind: int, tail: str, state: ParseState) -> tuple[Any, ...] | None:
    """``tail_values``, or None where it raises.  It may be called again for the same line (by the
    general code, which then raises the same error): a second call finds what the first one cached
    and changes nothing more."""
    try:
        return tail_values(kind, tail, state)
    except BadLine:
        return None


def general_event(
    kind: int, fields_text: str, state: ParseState, head: tuple[int, int, float, str, int]
) -> TraceEvent:
    """Build an event from its field text with the general (slower, careful) code."""
    lineno, cpu, ts, comm, pid = head
    fields_text = fields_text.strip()
    if kind == FUNC:
        func, parent = _function_fields(fields_text)
        return TraceEvent(FUNC, lineno, cpu, ts, comm, pid, text=func, parent=parent)
    if kind <= KMEM_CACHE_FREE:
        rest, name = _split_name(fields_text)
        f = _fields(rest)
        return TraceEvent(
            kind, lineno, cpu, ts, comm, pid, _get(f, "call_site"), _ptr(f, "ptr"),
            *_kmem_values(kind, f, name, state),
        )
    f = _fields(fields_text)
    gfp, order, migratetype = _page_values(kind, f, state)
    return TraceEvent(
        kind, lineno, cpu, ts, comm, pid, "", _ptr(f, "page"), 0, 0, gfp, -1, None, None,
        _int(f, "pfn"), order, migratetype,
    )


# --------------------------------------------------------------------------------------------
# The parser

