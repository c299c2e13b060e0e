"""A cache of parsed traces, so that a second replay of the same file skips the parsing.

:func:`cached_events` yields the same :class:`~kslab.trace.events.TraceEvent` records, and fills the
same :class:`~kslab.trace.ftrace.ParseStats`, as :func:`~kslab.trace.ftrace.iter_events` would: from
the cache when a valid one exists, else by parsing the trace while writing the cache.

Format (stdlib only): a file of pickled records.  The first is a header naming the format version,
the parser's version (a hash of the source of ``ftrace.py`` and ``events.py``), the trace's path,
size and modification time, and the parse options; any difference makes the cache stale, and it is
rewritten.  Then come chunks of up to 65,536 events stored by column: numbers as ``array`` bytes,
a column whose values are all equal as that one value, strings as lists (each distinct string
pickled once); the last record holds the ParseStats.  A cache is written under a temporary name
and renamed when complete, so a parse that fails or stops early leaves none behind.

Where: ``$KSLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/kslab/parsed``, else ``~/.cache/kslab/parsed``;
one file per trace, named by a hash of its absolute path.  Standard input and open files are
never cached (they are parsed as usual).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from array import array
from collections.abc import Generator, Iterator
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

from . import events as _events_module
from . import ftrace as _ftrace_module
from . import ftrace_general as _ftrace_general_module
from . import tracefile as _tracefile_module
from .events import TraceEvent
from .ftrace import ParseStats, Source, iter_events

__all__ = ["FORMAT_VERSION", "cache_dir", "cache_path", "cached_events", "drop_cache", "parser_version"]

FORMAT_VERSION = 2
CHUNK_EVENTS = 65536
_MAGIC = "kslab-parsed-trace"

# TraceEvent's fields in constructor order, and how each is stored: an array typecode, or "s" for a
# column of (interned) strings / None.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "b"), ("lineno", "q"), ("cpu", "i"), ("ts", "d"), ("comm", "s"), ("pid", "q"), ("call_site", "s"),
    ("ptr", "Q"), ("bytes_req", "q"), ("bytes_alloc", "q"), ("gfp", "q"), ("node", "q"), ("name", "s"),
    ("accounted", "s"), ("pfn", "q"), ("order", "q"), ("migratetype", "q"), ("text", "s"), ("parent", "s"),
    ("irq", "b"),
)

_parser_version: str | None = None


def parser_version() -> str:
    """A hash of the parser's source (ftrace.py, ftrace_general.py, tracefile.py, events.py): a changed parser
    makes every cache stale."""
    global _parser_version
    if _parser_version is None:
        h = hashlib.sha256()
        for mod in (_ftrace_module, _ftrace_general_module, _tracefile_module, _events_module):
            path = getattr(mod, "__file__", None)
            h.update(Path(path).read_bytes() if path else mod.__name__.encode())
        _parser_version = h.hexdigest()[:16]
    return _parser_version


def cache_dir() -> Path:
    env = os.environ.get("KSLAB_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "kslab" / "parsed"


def cache_path(trace: str | os.PathLike[str], directory: str | os.PathLike[str] | None = None) -> Path:
    """Where the cache of ``trace`` lives."""
    key = hashlib.sha256(os.path.abspath(os.fspath(trace)).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return Path(directory) if directory is not None else cache_dir() / f"{key}.kpt"


def _header(trace: str, skip_bad: bool) -> dict[str, Any]:
    st = os.stat(trace)
    return {"magic": _MAGIC, "format": FORMAT_VERSION, "parser": parser_version(), "path": os.path.abspath(trace),
            "size": st.st_size, "mtime_ns": st.st_mtime_ns, "skip_bad": skip_bad}


def drop_cache(trace: str | os.PathLike[str], directory: str | os.PathLike[str] | None = None) -> bool:
    """Remove the cache of ``trace``; True if there was one."""
    p = cache_path(trace, None) if directory is None else Path(directory) / cache_path(trace).name
    try:
        p.unlink()
        return True
    except FileNotFoundError:
        return False


def cached_events(source: Source, *, skip_bad: bool = False, stats: ParseStats | None = None,
                  directory: str | os.PathLike[str] | None = None) -> Iterator[TraceEvent]:
    """The events of ``source`` as :func:`~kslab.trace.ftrace.iter_events` gives them, through the cache.

    ``directory`` overrides :func:`cache_dir`.  A source that is not a path (``-``, a file object) is
    simply parsed.
    """
    if not isinstance(source, (str, os.PathLike)) or (isinstance(source, str) and source == "-"):
        return iter_events(source, skip_bad=skip_bad, stats=stats)
    trace = os.fspath(source)
    os.stat(trace)  # FileNotFoundError now, as iter_events
    stats = stats if stats is not None else ParseStats()
    where = cache_path(trace) if directory is None else Path(directory) / cache_path(trace).name
    header = _header(trace, skip_bad)
    if where.exists():
        try:
            with open(where, "rb") as f:
                found = pickle.load(f)
            if found == header:
                return _read(where, stats)
        except Exception:  # any unreadable cache is only stale
            pass
    return _write(trace, where, header, skip_bad, stats)


def _read(where: Path, stats: ParseStats) -> Generator[TraceEvent, None, None]:
    Event = TraceEvent
    with open(where, "rb") as f:
        load = pickle.load
        load(f)  # the header, checked by cached_events
        while True:
            rec = load(f)
            if rec[0] == "stats":
                for key, value in rec[1].items():
                    setattr(stats, key, value)
                return
            n, stored = rec[1], rec[2]
            cols: list[Any] = []
            for (_, code), col in zip(_COLUMNS, stored, strict=True):
                if col.__class__ is tuple:  # ("=", value): every value equal
                    cols.append(repeat(col[1], n))
                elif col.__class__ is bytes:
                    a = array(code)
                    a.frombytes(col)
                    cols.append(a.tolist())
                else:
                    cols.append(col)
            for row in zip(*cols, strict=True):
                yield Event(*row)


def _encode(values: list[Any], code: str) -> Any:
    first = values[0]
    if values.count(first) == len(values) and all(v.__class__ is first.__class__ for v in set(values)):
        return ("=", first)
    if code == "s":
        return values
    try:
        return array(code, values).tobytes()
    except (OverflowError, TypeError):
        return values  # a number that does not fit the typecode: kept as a list


def _write(trace: str, where: Path, header: dict[str, Any], skip_bad: bool,
           stats: ParseStats) -> Generator[TraceEvent, None, None]:
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = where.with_name(f"{where.name}.{os.getpid()}.tmp")
    done = False
    f = open(tmp, "wb")  # noqa: SIM115 - closed in finally
    try:
        pickler = pickle.Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dump(header)
        pickler.clear_memo()
        interned: dict[str, str] = {}
        chunk: list[TraceEvent] = []
        names = [name for name, _ in _COLUMNS]
        for ev in iter_events(trace, skip_bad=skip_bad, stats=stats):
            chunk.append(ev)
            if len(chunk) >= CHUNK_EVENTS:
                _dump_chunk(pickler, chunk, names, interned)
                chunk = []
            yield ev
        if chunk:
            _dump_chunk(pickler, chunk, names, interned)
        pickler.dump(("stats", {k: getattr(stats, k) for k in ParseStats.__dataclass_fields__}))
        f.close()
        os.replace(tmp, where)
        done = True
    finally:
        if not done:
            f.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _dump_chunk(pickler: pickle.Pickler, chunk: list[TraceEvent], names: list[str], interned: dict[str, str]) -> None:
    stored = []
    get = interned.setdefault
    columns = zip(*map(attrgetter(*names), chunk), strict=True)  # one tuple per field
    for column, (_, code) in zip(columns, _COLUMNS, strict=True):
        values = list(column)
        if code == "s":  # one object per distinct string, so that the pickle stores it once
            values = [v if v is None or v.__class__ is bool else get(v, v) for v in values]
        stored.append(_encode(values, code))
    pickler.dump(("chunk", len(chunk), stored))
    pickler.clear_memo()  # each record is read by a fresh Unpickler (and the memo would pin every chunk)
    if len(interned) > 200_000:
        interned.clear()
