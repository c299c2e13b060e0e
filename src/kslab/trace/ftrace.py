"""Streaming parser of text traces of the kmem tracepoints and the function tracer.

Understood layouts (all may be mixed in one input):

* the kernel's ``trace``/``trace_pipe`` text: ``comm-pid [cpu] flags ts: payload``, with or without
  the irq-info ``flags`` column, with or without the ``(tgid)`` column of ``record-tgid``;
* ``trace-cmd report``: the same columns (the ``cpus=N`` preamble and the padding after the event
  name are accepted), and the ``-l`` latency layout ``comm-pid cpuFLAGS ts: payload``;
* ``perf script``: ``comm pid [cpu] ts: subsystem:event: fields``.

Payloads: the kmem events of kernels 3.x to 6.x (``kmalloc``, ``kmalloc_node``, ``kfree``,
``kmem_cache_alloc``, ``kmem_cache_alloc_node``, ``kmem_cache_free``, ``mm_page_alloc``,
``mm_page_free``, ``mm_page_free_batched``), trace markers (``tracing_mark_write: text`` or the
``print`` event) and function-tracer lines (``func <-parent``; trace-cmd's ``function: func <--
parent``).  Lines of any other event are counted in ``ParseStats.skipped`` as ``other event: NAME``.

Time stamps are kept as floats: seconds for the nanosecond clocks, the raw count for the
``counter`` clock; ``ParseStats.clocks_seen`` says which style was seen.

The parser reads the input in 1 MiB chunks and keeps nothing but small caches between lines (the
parsed ``comm-pid [cpu] flags`` prefixes, the parsed gfp strings and field tails), so inputs of any
size stream.  The hot paths use no regular expression, only ``str.partition``/``str.find`` and
slicing (see ``_iter_events``); whatever they do not recognise goes to slower, general code,
which is also what names the problem of a malformed line.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import importlib
import lzma
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any, Final, TypeAlias

from kslab.mm.gfp import parse_gfp_flags
from kslab.trace.errors import TraceInputError, TraceParseError
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

__all__ = ["CHUNK_SIZE", "ParseStats", "Source", "iter_events", "open_trace_text"]

#: What ``iter_events`` accepts: a path, ``"-"`` for standard input, or an open file object
#: (text, or binary which is then decoded as UTF-8).
Source: TypeAlias = "str | os.PathLike[str] | IO[str] | IO[bytes]"

#: Size of the reads from the input (characters for text streams, bytes otherwise).
CHUNK_SIZE: Final = 1 << 20

# Longer "lines" (binary garbage without newlines) are cut into pieces of this length.
_MAX_LINE: Final = 1 << 20

_INF: Final = float("inf")

# Prefix caches are dropped when they grow past this many entries (fork-heavy traces have many
# distinct comm-pid pairs; the cache only saves time, it never changes a result).
_CACHE_LIMIT: Final = 100_000


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


class _BadLine(Exception):
    """Internal: the current line is malformed; ``args[0]`` is the reason."""


# --------------------------------------------------------------------------------------------
# Input


_Read = Callable[[int], Any]  # read(n) -> str or bytes


def _zstd_reader(path: str, stack: ExitStack) -> _Read:
    """``read`` of the decompressed content of a .zst file: through the ``zstandard`` module if
    it is installed, else through a ``zstd -dc`` child process."""
    try:
        zstandard: Any = importlib.import_module("zstandard")
    except ImportError:
        zstandard = None
    if zstandard is not None:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - the ExitStack closes it
        dctx = zstandard.ZstdDecompressor()
        try:
            reader = dctx.stream_reader(raw, read_across_frames=True)
        except TypeError:  # zstandard < 0.17 reads one frame only
            reader = dctx.stream_reader(raw)
        stack.callback(reader.close)
        return reader.read  # type: ignore[no-any-return]
    exe = shutil.which("zstd")
    if exe is None:
        raise TraceInputError(
            f"{path}: reading .zst input needs the 'zstandard' Python module or the 'zstd' program"
        )
    proc = subprocess.Popen([exe, "-dcq", "--", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    at_end = False

    def read(size: int) -> bytes:
        nonlocal at_end
        data = stdout.read(size)
        at_end = not data
        return data

    def finish() -> None:
        if not at_end:  # the reader stopped early: stop the decompressor
            proc.kill()
        stdout.close()
        err = stderr.read().decode("utf-8", "replace").strip()
        stderr.close()
        code = proc.wait()
        if at_end and code != 0:
            raise TraceInputError(f"{path}: zstd failed ({code}): {err}")

    stack.callback(finish)
    return read


def open_trace_text(source: Source, stack: ExitStack) -> tuple[_Read, bool, str]:
    """Open ``source`` for reading; what is opened here is closed by ``stack``.

    Returns ``(read, is_binary, display_name)`` where ``read(n)`` returns up to ``n`` characters
    (or bytes when ``is_binary``).  Paths ending in .gz, .xz, .lzma, .bz2 or .zst are decompressed.
    File objects are read as they are and not closed.
    """
    if isinstance(source, str) and source == "-":
        buf = getattr(sys.stdin, "buffer", None)
        if buf is not None:
            return buf.read, True, "<stdin>"
        return sys.stdin.read, False, "<stdin>"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        low = path.lower()
        if low.endswith(".zst"):
            return _zstd_reader(path, stack), True, path
        opener: Callable[[str, str], Any] = open
        if low.endswith(".gz"):
            opener = gzip.open
        elif low.endswith((".xz", ".lzma")):
            opener = lzma.open
        elif low.endswith(".bz2"):
            opener = bz2.open
        stream = opener(path, "rb")
        stack.callback(stream.close)
        return stream.read, True, path
    probe = source.read(0)
    name = getattr(source, "name", None)
    display = name if isinstance(name, str) else "<stream>"
    return source.read, isinstance(probe, (bytes, bytearray)), display


def _line_batches(read: _Read, binary: bool) -> Iterator[list[str]]:
    """Lists of lines without their newline, about CHUNK_SIZE characters at a time.

    Bytes are decoded as UTF-8, invalid sequences replaced by U+FFFD.  ``\\r\\n`` ends a line too.  A
    byte-order mark at the start is dropped.
    """
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode if binary else None
    carry = ""
    bom = True
    while True:
        data = read(CHUNK_SIZE)
        if not data:
            break
        text: str = decode(data) if decode is not None else data
        if bom:
            bom = False
            if text[:1] == "\ufeff":  # a byte-order mark, as some editors save a file: not text
                text = text[1:]
        if carry:
            text = carry + text
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        carry = lines.pop()
        if len(carry) > _MAX_LINE:  # no newline for a long while: binary garbage, cut it
            lines.append(carry)
            carry = ""
        if lines:
            yield lines
    if decode is not None:
        carry += decode(b"", True)
    if carry.endswith("\r"):
        carry = carry[:-1]
    if carry:
        yield [carry]


def _checked_batches(batches: Iterator[list[str]], path: str, lineno: Callable[[], int]) -> Iterator[list[str]]:
    """``batches``, with the errors of a corrupt or truncated compressed input (and of reading) turned
    into one :class:`TraceInputError` naming the input and the line reached."""
    while True:
        try:
            lines = next(batches)
        except StopIteration:
            return
        except TraceInputError:
            raise
        except (EOFError, OSError, ValueError, lzma.LZMAError, zlib.error) as e:
            raise _input_error(path, lineno(), e) from e
        except Exception as e:
            if e.__class__.__name__ != "ZstdError":  # zstandard's, when that module is used
                raise
            raise _input_error(path, lineno(), e) from e
        yield lines


def _input_error(path: str, lineno: int, e: BaseException) -> TraceInputError:
    what = " ".join((getattr(e, "strerror", None) or str(e) or e.__class__.__name__).split())
    where = f"after line {lineno}"
    low = path.lower()
    tool = next((t for ext, t in ((".gz", "gzip"), (".xz", "xz"), (".lzma", "xz"), (".bz2", "bzip2"),
                                  (".zst", "zstd")) if low.endswith(ext)), None)
    if tool is None:
        return TraceInputError(f"{path}: read error {where}: {what}")
    if isinstance(e, EOFError):
        return TraceInputError(f"{path}: the compressed data is cut short {where} (a truncated file?): {what}; "
                               f"'{tool} -dc' recovers the text before the cut")
    return TraceInputError(f"{path}: not valid {tool} data {where}: {what}; kslab picks the decompressor "
                           f"by the file name's ending: rename the file if it is not {tool}-compressed")


# --------------------------------------------------------------------------------------------
# Slow paths: prefixes, odd lines, odd fields

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


class _State:
    """Per-input parse state: caches and the layout facts found so far."""

    __slots__ = ("prefixes", "gfp", "tails", "kinds", "others", "stats", "trace_cmd")

    def __init__(self, stats: ParseStats) -> None:
        #: prefix text (everything before the time stamp) -> (comm, pid, cpu, irq)
        self.prefixes: dict[str, tuple[str, int, int, int]] = {}
        #: gfp_flags text -> value
        self.gfp: dict[str, int] = {}
        #: per kind: the fields after ptr=/pfn= -> parsed values (see _tail_values)
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
        if len(self.prefixes) >= _CACHE_LIMIT:
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
        if len(self.gfp) >= _CACHE_LIMIT:
            self.gfp.clear()
        self.gfp[text] = value
        return value


def _slow_line(line: str, state: _State) -> tuple[Any, ...]:
    """Classify a line the fast path could not handle.

    Returns ``("event", comm, pid, cpu, irq, ts_text, payload_start)``, ``("header",)``,
    ``("lost", n)`` or ``("skip", reason)``; raises _BadLine.
    """
    stripped = line.strip()
    if not stripped or line[0] == "#":
        return ("header",)
    if stripped.startswith("=>"):  # the lines of a stack trace (stacktrace option or trigger)
        return ("skip", "stack trace")
    if len(line) > 8192:  # no kernel prints such lines; keep the regexes below linear
        binary = "\x00" in line or "\ufffd" in line
        raise _BadLine("malformed: binary data" if binary else "malformed: line too long")
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
                raise _BadLine("malformed: bad timestamp")
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
        raise _BadLine("malformed: binary data")
    if _HAS_CPU.search(line) is None:
        raise _BadLine("malformed: no cpu field")
    if _HAS_TIMESTAMP.search(line) is None:
        raise _BadLine("malformed: no timestamp")
    raise _BadLine("malformed: bad prefix")


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
            raise _BadLine("malformed: text before the first field")
    return out


def _get(fields: dict[str, str], key: str) -> str:
    try:
        return fields[key]
    except KeyError:
        raise _BadLine(f"malformed: missing {key}") from None


def _int(fields: dict[str, str], key: str, default: int | None = None) -> int:
    """A decimal field (``0x`` hex accepted)."""
    if default is not None and key not in fields:
        return default
    text = _get(fields, key)
    try:
        return int(text, 16) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        raise _BadLine(f"malformed: bad number in {key}") from None


def _ptr(fields: dict[str, str], key: str) -> int:
    """A pointer field: hex with or without ``0x``; ``(null)`` (old kernels) and ``(nil)``
    (user-space printf) are 0."""
    text = _get(fields, key)
    if text in ("(null)", "(nil)"):
        return 0
    try:
        return int(text, 16)
    except ValueError:
        raise _BadLine(f"malformed: bad pointer in {key}") from None


def _bool(fields: dict[str, str], key: str) -> bool | None:
    text = fields.get(key)
    if text is None:
        return None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _BadLine(f"malformed: bad boolean in {key}")


def _after_spaces(line: str, i: int) -> int:
    """Index of the first non-blank character of ``line`` at or after ``i``."""
    return len(line) - len(line[i:].lstrip())


def _strip_offset(symbol: str) -> str:
    """``func+0x1c/0x80`` -> ``func``."""
    plus = symbol.find("+")
    return symbol[:plus] if plus > 0 else symbol


def _print_text(text: str) -> str:
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
        return _strip_offset(_get(f, "ip")), f.get("parent_ip", "")
    func, sep, parent = text.partition(" <-- ")
    if not sep:
        func, _, parent = text.partition(" <-")
    func = func.strip()
    if not func or " " in func:
        raise _BadLine("malformed: bad function entry")
    return _strip_offset(func), parent.strip()


def _split_name(text: str) -> tuple[str, str | None]:
    """Cut the ``name=`` field off, which runs to the end of the line (a cache name)."""
    if text.startswith("name="):
        return "", text[5:]
    at = text.find(" name=")
    if at < 0:
        return text, None
    return text[:at], text[at + 6 :]


def _gfp(fields: dict[str, str], state: _State) -> int:
    text = _get(fields, "gfp_flags")
    value = state.gfp.get(text)
    return state.gfp_value(text) if value is None else value


def _kmem_values(kind: int, f: dict[str, str], name: str | None, state: _State) -> tuple[Any, ...]:
    """The TraceEvent arguments after ``ptr`` of a kmem event, from its other fields."""
    if kind <= KMEM_CACHE_ALLOC_NODE:
        if kind in (KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE) and "node" not in f:
            raise _BadLine("malformed: missing node")
        return (
            _int(f, "bytes_req"), _int(f, "bytes_alloc"), _gfp(f, state), _int(f, "node", -1),
            name, _bool(f, "accounted"), -1, -1, -1, "", "",
        )
    return (0, 0, 0, -1, name, None, -1, -1, -1, "", "")


def _page_values(kind: int, f: dict[str, str], state: _State) -> tuple[int, int, int]:
    """(gfp, order, migratetype) of a page allocator event, from its other fields."""
    if kind == MM_PAGE_ALLOC:
        return _gfp(f, state), _order(f, None), _int(f, "migratetype")
    return 0, _order(f, 0 if kind == MM_PAGE_FREE_BATCHED else None), -1


def _order(fields: dict[str, str], default: int | None) -> int:
    """The ``order`` field: 2**order pages must fit a 64-bit address space (no kernel prints more than 10)."""
    order = _int(fields, "order", default)
    if not 0 <= order < 64:
        raise _BadLine("malformed: impossible order")
    return order


def _tail_values(kind: int, tail: str, state: _State) -> tuple[Any, ...]:
    """Parse (and cache) the fields after ``ptr=``/``pfn=`` of a kmem/page event."""
    cache = state.tails[kind]
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    values: tuple[Any, ...]
    if kind <= KMEM_CACHE_FREE:
        rest, name = _split_name(tail)
        values = _kmem_values(kind, _fields(rest), name, state)
    else:
        values = _page_values(kind, _fields(tail), state)
    cache[tail] = values
    return values


def _kmem_head(text: str, state: _State) -> tuple[int, str, Callable[[str], Any]] | None:
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


def _func_entry(text: str) -> tuple[str, str] | None:
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
        func = _strip_offset(func)
    return func, parent


def _try_tail_values(kind: int, tail: str, state: _State) -> tuple[Any, ...] | None:
    """``_tail_values``, or None where it raises.  It may be called again for the same line (by the
    general code, which then raises the same error): a second call finds what the first one cached
    and changes nothing more."""
    try:
        return _tail_values(kind, tail, state)
    except _BadLine:
        return None


def _general_event(
    kind: int, fields_text: str, state: _State, head: tuple[int, int, float, str, int]
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


def iter_events(
    source: Source, *, skip_bad: bool = False, stats: ParseStats | None = None
) -> Generator[TraceEvent, None, None]:
    """Parse a text trace, yielding one :class:`TraceEvent` per kmem event, marker and function
    entry, in file order.

    ``source``: a path (``str``/``PathLike``; .gz/.xz/.lzma/.bz2/.zst decompressed on the fly),
    ``"-"`` for standard input, or an open text or binary file object (not closed here).

    A malformed line raises :class:`~kslab.trace.errors.TraceParseError` (path, line number,
    reason, line); with ``skip_bad=True`` it is counted in ``stats.skipped`` under its reason
    (``malformed: ...``) instead.  Lines of other events and tracers are never errors.

    ``stats``, when given, is filled in as the input is read (see :class:`ParseStats`).

    A path is checked for existence at call time (FileNotFoundError); reading starts at the
    first ``next()``.  Closing the generator early (``close()``, or dropping it) closes what it
    opened, and stops the ``zstd`` child process if one was started.
    """
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source == "-"):
        os.stat(source)  # fail now, not at the first next()
    return _iter_events(source, skip_bad, stats if stats is not None else ParseStats())


def _iter_events(source: Source, skip_bad: bool, stats: ParseStats) -> Generator[TraceEvent, None, None]:
    """The generator behind :func:`iter_events`.

    The loop body is one long function on purpose: locals are the fastest names in CPython, and a
    call per line costs as much as parsing a field.

    Each line is first offered to a fast path (section 0 of the loop) for the shapes that make up
    nearly all of a kmem trace: ``PREFIX TS: kmem_event: call_site=SYM ptr=HEX REST``,
    ``PREFIX TS: mm_page_*: page=HEX pfn=DEC REST`` and ``PREFIX TS: func <-parent``, where PREFIX,
    the start ``kmem_event: call_site=SYM``, REST and the function entry are all found in caches of
    what the general code (or the helpers below, which read them as it does) made of them before.
    It splits the line with three or four ``str.partition`` calls and builds the event without the
    class call.  It changes no parse state except through those helpers (whose results are the
    general code's), raises nothing and declines on any doubt; a declined line goes through the
    general code from the start, so the result is always what the general code gives:
    1. the prefix: find the first ``: `` (the end of the time stamp) and the space before the
       time stamp; everything before that space is looked up in a cache of validated prefixes
       -> (comm, pid, cpu, irq); a miss, or any surprise (a comm holding ``: ``, a header, garbage),
       goes to ``_slow_line``, which validates and caches the prefix or classifies the line;
    2. the event name (up to the next ``: ``; none for function-tracer lines);
    3. for kmem and page events: ``call_site=``/``page=`` is taken up to `` ptr=``/`` pfn=``, the
       pointer/pfn up to the next space, and the remaining fields (sizes, flags, node, name...),
       which repeat a lot, are looked up in a per-kind cache of parsed values.  Anything that
       does not fit goes through ``_general_event``, which also names what is wrong.
    """
    state = _State(stats)
    skipped = stats.skipped
    by_kind = [0] * len(KIND_NAMES)
    lineno = 0
    header = 0
    lost = 0
    seconds = counter = False
    failed = False

    prefix_get = state.prefixes.get
    kind_get = state.kinds.get
    others_get = state.others.get
    tails = state.tails
    Event = TraceEvent
    # the fast path builds events as object.__new__ + __init__ with the arguments spelled out: a
    # Python-to-Python call, cheaper than calling the class (and than spreading a tuple into it)
    new_event = object.__new__
    init_event = TraceEvent.__init__
    kmem_heads: dict[str, tuple[int, str, Callable[[str], Any]]] = {}
    kmem_head_get = kmem_heads.get
    funcs: dict[str, tuple[str, str]] = {}
    func_get = funcs.get

    def flush() -> None:
        stats.lines = lineno - 1 if failed else lineno
        stats.events = sum(by_kind)
        stats.header = header
        stats.lost_events = lost
        stats.by_kind = Counter({KIND_NAMES[k]: n for k, n in enumerate(by_kind) if n})
        if seconds:
            stats.clocks_seen.add("seconds")
        if counter:
            stats.clocks_seen.add("counter")

    with ExitStack() as stack:
        read, binary, path = open_trace_text(source, stack)
        try:
            # the lambda reads lineno when it is called (late binding on purpose): the line being parsed
            for lines in _checked_batches(_line_batches(read, binary), path, lambda: lineno):  # noqa: B023
                for line in lines:
                    lineno += 1
                    # ---- 0. the fast path: the common shapes, every cache hit -------------
                    # Only what the general code below would turn into the same event passes here;
                    # anything else (a prefix not yet cached, an odd field) goes on to the general
                    # code, which parses the line from the start.  The fast path changes the parse
                    # state only where the general code would have made the same change for the line
                    # (_try_tail_values), so that a declined line finds the state it would have found.
                    head, colon_sp, rest = line.partition(": ")
                    key, _, ts_text = head.rpartition(" ")
                    who = prefix_get(key)
                    if who is not None and colon_sp:
                        a, dot, b = ts_text.partition(".")
                        if a.isdecimal() and (not dot or b.isdecimal()):
                            ts = float(ts_text)
                            if ts != _INF:
                                comm, pid, cpu, irq = who
                                name_cs, sep, ptr_tail = rest.partition(" ptr=")
                                if sep:  # "kmalloc: call_site=SYM ptr=HEX REST"
                                    kc = kmem_head_get(name_cs)
                                    if kc is None:
                                        kc = _kmem_head(name_cs, state)
                                        if kc is not None:
                                            if len(kmem_heads) >= _CACHE_LIMIT:
                                                kmem_heads.clear()
                                            kmem_heads[name_cs] = kc
                                    if kc is not None:
                                        kmem_kind, call_site, tail_get = kc
                                        ptr_text, _, tail = ptr_tail.partition(" ")
                                        try:
                                            ptr = int(ptr_text, 16)
                                        except ValueError:  # "(null)": the general code knows
                                            ptr = -1
                                        if ptr >= 0:  # (in this order: the general code parses the
                                            # pointer before the tail, which may change the stats)
                                            values = tail_get(tail)
                                            if values is None:
                                                values = _try_tail_values(kmem_kind, tail, state)
                                            if values is not None:
                                                breq, balloc, gfp, node, name, accounted, _, _, _, _, _ = values
                                                out = new_event(Event)
                                                init_event(
                                                    out, kmem_kind, lineno, cpu, ts, comm, pid, call_site, ptr,
                                                    breq, balloc, gfp, node, name, accounted,
                                                )
                                                if irq:
                                                    out.irq = irq
                                                if dot:
                                                    seconds = True
                                                else:
                                                    counter = True
                                                by_kind[kmem_kind] += 1
                                                yield out
                                                continue
                                elif ": " not in rest:  # a function-tracer entry "func <-parent"
                                    fp = func_get(rest)
                                    if fp is None:
                                        fp = _func_entry(rest)
                                        if fp is not None:
                                            if len(funcs) >= _CACHE_LIMIT:
                                                funcs.clear()
                                            funcs[rest] = fp
                                    if fp is not None:
                                        func, parent = fp
                                        out = new_event(Event)
                                        init_event(
                                            out, FUNC, lineno, cpu, ts, comm, pid,
                                            "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, func, parent, irq,
                                        )
                                        if dot:
                                            seconds = True
                                        else:
                                            counter = True
                                        by_kind[FUNC] += 1
                                        yield out
                                        continue
                                else:  # "mm_page_alloc: page=HEX pfn=DEC REST"
                                    name_page, sep, pfn_tail = rest.partition(" pfn=")
                                    e = name_page.find(": ")
                                    if sep and e > 0:
                                        pkind = kind_get(name_page[:e])
                                        if (
                                            pkind is not None and MM_PAGE_ALLOC <= pkind <= MM_PAGE_FREE_BATCHED
                                            and name_page.startswith("page=", e + 2)
                                        ):
                                            pfn_text, _, tail = pfn_tail.partition(" ")
                                            values = tails[pkind].get(tail)
                                            if values is None:
                                                values = _try_tail_values(pkind, tail, state)
                                            if values is not None:
                                                try:
                                                    page = int(name_page[e + 7 :], 16)
                                                    pfn = int(pfn_text)
                                                except ValueError:
                                                    page = -1
                                                if page >= 0:
                                                    gfp, order, migratetype = values
                                                    out = new_event(Event)
                                                    init_event(
                                                        out, pkind, lineno, cpu, ts, comm, pid, "", page,
                                                        0, 0, gfp, -1, None, None, pfn, order, migratetype,
                                                    )
                                                    if irq:
                                                        out.irq = irq
                                                    if dot:
                                                        seconds = True
                                                    else:
                                                        counter = True
                                                    by_kind[pkind] += 1
                                                    yield out
                                                    continue
                    try:
                        # ---- 1. prefix: "comm-pid [cpu] flags ts: " ----------------------
                        who = None
                        colon = line.find(": ")
                        if colon > 0:
                            sp = line.rfind(" ", 0, colon)
                            who = prefix_get(line[:sp])
                        if who is not None:
                            comm, pid, cpu, irq = who
                            ts_text = line[sp + 1 : colon]
                            # float() also takes "1e5", "inf", "1_0", "-1": only what the slow path's
                            # _TIMESTAMP takes (digits[.digits]) may pass here, or a line would parse
                            # differently with and without its prefix in the cache
                            a, dot, b = ts_text.partition(".")
                            if a.isdecimal() and (not dot or b.isdecimal()):
                                ts = float(ts_text)
                            else:
                                who = None
                            p0 = colon + 2
                        if who is None:
                            res = _slow_line(line, state)
                            what = res[0]
                            if what == "header":
                                header += 1
                                continue
                            if what == "lost":
                                lost += res[1]
                                skipped["lost events"] += 1
                                continue
                            if what == "skip":
                                skipped[res[1]] += 1
                                continue
                            _, comm, pid, cpu, irq, ts_text, p0 = res
                            ts = float(ts_text)
                        if ts == _INF:  # 400 digits and more: no clock counts that far
                            raise _BadLine("malformed: timestamp out of range")
                        if "." in ts_text:
                            seconds = True
                        else:
                            counter = True

                        # ---- 2. event name, or a function-tracer line --------------------
                        e = line.find(": ", p0)
                        if e < 0:
                            if line.endswith(":") and len(line) > p0 + 1:
                                e = len(line) - 1  # an event without fields (or truncated)
                            else:
                                i = line.find(" <-", p0)
                                if i >= 0:
                                    func = line[p0:i]
                                    parent = line[i + 3 :]
                                elif line.find(" ", p0) < 0 and len(line) > p0:
                                    func = line[p0:]
                                    parent = ""
                                elif line.endswith("stack trace>", p0):  # "<stack trace>", "<user ...>"
                                    skipped["stack trace"] += 1
                                    continue
                                elif len(line) <= p0:
                                    raise _BadLine("malformed: no event")
                                else:
                                    raise _BadLine("malformed: unrecognised payload")
                                if "+" in func:
                                    func = _strip_offset(func)
                                by_kind[FUNC] += 1
                                yield Event(
                                    FUNC, lineno, cpu, ts, comm, pid,
                                    "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, func, parent, irq,
                                )
                                continue
                        ename = line[p0:e]
                        kind = kind_get(ename)
                        if kind is None:  # not one of ours, or a name printed in an odd way
                            reason = others_get(ename)
                            if reason is None:
                                kind = state.resolve_kind(ename)
                                if kind < 0:
                                    reason = state.others[ename]
                            if reason is not None:
                                skipped[reason] += 1
                                continue
                            assert kind is not None
                        f0 = e + 2

                        # ---- 3. fields ---------------------------------------------------
                        ev = None
                        if kind <= KMEM_CACHE_FREE:
                            # call_site=SYM ptr=HEX REST; SYM may hold a space: "f+0x1/0x2 [mod]"
                            if line.startswith("call_site=", f0) or line.startswith(
                                "call_site=", f0 := _after_spaces(line, f0)  # trace-cmd's padding
                            ):
                                p = line.find(" ptr=", f0)
                                if p > 0:
                                    q = line.find(" ", p + 5)
                                    if q < 0:
                                        q = len(line)
                                    try:
                                        ptr = int(line[p + 5 : q], 16)
                                    except ValueError:  # "(null)", "  (null)": the general code knows
                                        ptr = -1
                                    if ptr >= 0:
                                        tail = line[q + 1 :]
                                        values = tails[kind].get(tail)
                                        if values is None:
                                            values = _tail_values(kind, tail, state)
                                        ev = Event(
                                            kind, lineno, cpu, ts, comm, pid, line[f0 + 10 : p], ptr, *values
                                        )
                        elif kind <= MM_PAGE_FREE_BATCHED:
                            # page=HEX pfn=DEC REST
                            if line.startswith("page=", f0) or line.startswith(
                                "page=", f0 := _after_spaces(line, f0)
                            ):
                                p = line.find(" pfn=", f0)
                                if p > 0:
                                    q = line.find(" ", p + 5)
                                    if q < 0:
                                        q = len(line)
                                    tail = line[q + 1 :]
                                    values = tails[kind].get(tail)
                                    if values is None:
                                        values = _tail_values(kind, tail, state)
                                    gfp, order, migratetype = values
                                    try:  # noqa: SIM105 - cheaper than contextlib.suppress, once per line
                                        ev = Event(
                                            kind, lineno, cpu, ts, comm, pid, "", int(line[f0 + 5 : p], 16),
                                            0, 0, gfp, -1, None, None,
                                            int(line[p + 5 : q]),
                                            order, migratetype, "", "",
                                        )
                                    except ValueError:
                                        pass  # "pfn=0x...", "page=(null)": the general code knows
                        elif kind == MARK:
                            text = line[f0:]
                            if ename != "tracing_mark_write":  # trace-cmd's and perf's "print"
                                text = _print_text(text.lstrip())
                            ev = Event(MARK, lineno, cpu, ts, comm, pid, text=text)
                        if ev is None:
                            ev = _general_event(kind, line[f0:], state, (lineno, cpu, ts, comm, pid))
                        if irq:
                            ev.irq = irq
                        by_kind[kind] += 1
                        yield ev
                    except _BadLine as bad:
                        reason = bad.args[0]
                        if not skip_bad:
                            failed = True
                            raise TraceParseError(path, lineno, reason, line) from None
                        skipped[reason] += 1
                flush()
        finally:
            flush()
