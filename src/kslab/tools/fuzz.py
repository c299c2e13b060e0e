"""Fuzzing of the trace parser, the replay and the ``kslab`` command with random and adversarial traces.

    python -m kslab.tools.fuzz --inputs 20000 --seed 1             the long run (see docs/robustness.md)
    python -m kslab.tools.fuzz --atheris -- -runs=100000           coverage-guided, if atheris is installed

Each input is a trace made by :func:`random_trace`: lines of every layout the parser knows (ftrace with and
without irq-info and tgid columns, trace-cmd, its latency layout, perf script), of every kmem event, page
events, markers, function-tracer lines, headers, lost-event lines, stack traces, other tracers and events,
with adversarial values (sizes of 0, negative or of 30 digits, NULL and non-canonical pointers, pointers
wider than 64 bits, CPUs that do not exist, nodes out of range, unknown gfp flags, cache names with spaces,
HTML or non-ASCII letters, unknown caches, the model's internal call sites, time going backwards or jumping
far), frees of pointers never allocated, double frees, frees naming another cache; then mutated (lines cut
short, characters deleted, inserted (NUL, 0xff, ": ", "="), swapped, duplicated), and sometimes the whole
input cut at a random byte, given CRLF line ends, a BOM, binary garbage, or made empty or headers only.

Each input goes through:

* the parser, with ``skip_bad=True`` (nothing may be raised) and ``skip_bad=False`` (only TraceParseError,
  whose message is one line naming the input and the line); ``ParseStats`` must add up
  (``lines == events + header + skipped``);
* the replay on a random machine (``Replayer(...).run(iter_events(...))``): nothing but a one-line
  :class:`~kslab.mm.errors.KslabError` may be raised; every event must be accounted for
  (``applied + skipped == events ==`` the parser's count); the model's invariants must hold afterwards
  (``Replayer.check()``);
* every ``--cli-every``-th input, ``kslab.cli.main`` (replay, stats, top, report) on the input written to a
  file (sometimes compressed, sometimes with a truncated compressed stream): the exit status must be 0 or 1,
  an error must be exactly one ``kslab: error: ...`` line, no traceback, and the HTML report must not carry
  a cache name's HTML unescaped.

A failure prints the seed and input number and saves the input in ``--save`` (default ``fuzz-failures/``).
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import gzip
import io
import lzma
import os
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..mm.config import MachineConfig
from ..mm.errors import KslabError
from ..trace.errors import TraceParseError
from ..trace.ftrace import ParseStats, iter_events
from ..trace.replay import Replayer, ReplayOptions

# ---- the generator -----------------------------------------------------------------------------------

COMMS = ("<idle>", "init", "kworker/0:1", "cut", "bash", "my task", "a-b-c", "x: y", "sh]", "\u00e9t\u00e9", "")
CACHE_NAMES = ("dentry", "kmalloc-64", "kmalloc-4k", "names_cache", "kmem_cache", "ftrace_event_field", "vmap_area",
               "filp", "no-such-cache", "my cache", "<script>alert(1)</script>", "a&b\"c'", "\u00f1ame", "kmalloc-1k",
               "pool_workqueue", "kmem_cache_node", "")
SITES = ("getname_flags+0x2b/0x180", "__d_alloc+0x22/0x1d0", "alloc_desc+0x39/0x1d0", "f", "ffffffff81234567",
         "ext4_foo+0x10/0x20 [ext4]", "create_cache+0x5a/0x1b0", "kmem_cache_create_usercopy+0x1/0x2",
         "alloc_arraycache+0x1/0x2", "__alloc_alien_cache+0x1/0x2", "init_cache_node+0x1/0x2",
         "setup_kmem_cache_node+0x1/0x2", "cache_grow_begin+0x1/0x2", "alloc_slabmgmt+0x1/0x2",
         "slab_destroy+0x1/0x2", "free_alien_cache+0x1/0x2", "kmem_cache_release+0x1/0x2",
         "__kmem_cache_release+0x1/0x2", "seq_read_iter+0x1/0x2", "alloc_bprm+0x1/0x2", "x+0x1/0x2 [mod with space]")
INTERNAL_ALLOC = ("create_cache", "kmem_cache_create_usercopy", "alloc_arraycache", "__alloc_alien_cache",
                  "init_cache_node", "setup_kmem_cache_node", "cache_grow_begin", "alloc_slabmgmt")
GFPS = ("GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_KERNEL_ACCOUNT", "GFP_DMA",
        "__GFP_NOWARN|__GFP_COMP|__GFP_THISNODE", "GFP_KERNEL|__GFP_NEWFLAG", "0x0", "0xffffffffffffffff", "",
        "__GFP_DMA|__GFP_DMA32", "GFP_KERNEL|GFP_ZERO", "__GFP_MEMALLOC", "none")
FUNCS = ("cache_alloc_refill <-__kmalloc", "cache_reap <-process_one_work", "cache_grow_begin <-cache_alloc_refill",
         "enable_cpucache <-kmem_cache_init_late", "setup_kmem_cache_node <-cpuup_prepare",
         "kmem_cache_shrink <-acpi_os_purge_cache", "free_block <-cache_flusharray", "foo+0x1c/0x80 <-bar",
         "lonely_function", "kmem_cache_shrink <-nobody")
MARKS = ("oracle: snapshot 0-start begin", "oracle: snapshot 0-start end", "snapshot files begin", "retune written: "
         "dentry 120 60 8", "hello", "", "<b>bold</b>", "snapshot ../../etc/passwd begin", "snapshot a/b begin")
OTHER = ("sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b", "irq_handler_entry: irq=1 name=timer",
         "kmem_cache_alloc_bulk: n=3", "mm_page_pcpu_drain: page=0 pfn=1 order=0 migratetype=0")
WEIRD = ("", "-1", "-99999999999999999999", "0", "18446744073709551616", "9" * 30, "0x", "(null)", "(nil)", "abc",
         "1e9", "inf", "nan", " ", "=", "\x00", "\ufffd", "0x" + "f" * 40, "+5", "1_000")
HEADERS = ("# tracer: nop", "#", "# entries-in-buffer/entries-written: 5/5   #P:2", "cpus=4", "version = 6",
           "CPU 1 is empty", "--------------------", "CPU:1 [LOST 42 EVENTS]", "CPU:0 [EVENTS DROPPED]",
           " => kmem_cache_alloc", " <stack trace>", " 0)   0.123 us    |  kfree();", "", "   ")


class TraceGen:
    """Random adversarial traces; every choice comes from ``rng``, so a seed gives the same trace."""

    def __init__(self, rng: random.Random, wild: float = 0.15, internal_sites: bool = True) -> None:
        self.rng = rng
        self.wild = wild  # probability of an adversarial value where one can go
        # the call sites of the model's own allocations (which the replay pairs with the model's structures)
        self.sites = SITES if internal_sites else tuple(s for s in SITES if s.split("+")[0] not in INTERNAL_ALLOC)
        self.ptrs: list[int] = []
        self.ts = 0.0
        self.counter = rng.random() < 0.15
        self.layout = rng.choice(("ftrace", "irq", "tgid", "trace-cmd", "latency", "perf", "mixed"))

    def _pick(self, normal: Callable[[], str]) -> str:
        return self.rng.choice(WEIRD) if self.rng.random() < self.wild else normal()

    def ptr(self, fresh: bool) -> str:
        rng = self.rng
        r = rng.random()
        if r < self.wild * 0.5:
            return rng.choice(("0", "(null)", "10", "16", "17", "ffffffffffffffff", "1" + "0" * 30,
                               "0000123400000000", "-5", "ffff8880" + "zz" * 4, "fffffffffff"))
        if not fresh and self.ptrs and r < 0.9:
            return f"{rng.choice(self.ptrs):x}"
        p = 0xFFFF888000000000 + rng.randrange(1 << 20) * rng.choice((8, 64, 192, 4096))
        if len(self.ptrs) < 300:
            self.ptrs.append(p)
        else:
            self.ptrs[rng.randrange(300)] = p
        return f"{p:x}"

    def timestamp(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < self.wild * 0.2:
            return rng.choice(("-1.0", "1e5", "inf", "99999999999.5", "0.5.5", "abc", "9" * 400 + ".0", "1.", ".5"))
        if r < self.wild * 0.4:
            self.ts = max(0.0, self.ts - rng.random() * 5)  # backwards
        else:
            self.ts += rng.random() * (0.01 if rng.random() < 0.95 else 30)
        return str(int(self.ts * 1e6)) if self.counter else f"{self.ts:.6f}"

    def prefix(self) -> str:
        rng = self.rng
        comm = rng.choice(COMMS)
        pid = rng.choice((0, 1, 58, 1234, 4194304)) if rng.random() > self.wild * 0.3 else rng.choice(WEIRD)
        cpu = rng.choice((0, 0, 0, 1, 1, 2, 3)) if rng.random() > self.wild else rng.choice((7, 63, 255, 4096, 10**12))
        ts = self.timestamp()
        layout = self.layout if self.layout != "mixed" else rng.choice(("ftrace", "irq", "tgid", "latency", "perf"))
        flags = rng.choice(("d...", "....", "dp.1", "d.h2", "dNs.")) if rng.random() > 0.05 else ""
        if layout == "ftrace":
            return f"{comm:>16}-{pid:<7} [{cpu:03}] {ts}: "
        if layout in ("irq", "trace-cmd"):
            return f"{comm:>16}-{pid:<7} [{cpu:03}] {flags} {ts}: "
        if layout == "tgid":
            return f"{comm:>16}-{pid:<7} ({rng.choice(('  1', '-----', '123'))}) [{cpu:03}] {flags} {ts}: "
        if layout == "latency":
            return f"{comm:>16}-{pid:<7} {cpu}{flags or 'd'} {ts}: "
        return f"{comm:>16} {pid:>6} [{cpu:03}] {ts}: "

    def payload(self) -> str:
        rng = self.rng
        perf = self.layout == "perf"
        sub = "kmem:" if perf else ""
        kind = rng.choices(("alloc", "free", "page", "mark", "func", "other"), (40, 35, 6, 5, 10, 4))[0]
        site = rng.choice(self.sites) if rng.random() > self.wild * 0.3 else rng.choice(WEIRD)
        if kind == "alloc":
            ev = rng.choice(("kmalloc", "kmalloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node"))
            req = self._pick(lambda: str(rng.choice((8, 24, 48, 64, 100, 192, 256, 448, 4096, 5000, 70000))))
            alloc = self._pick(lambda: req if req.isdigit() and rng.random() < 0.5 else
                               str(rng.choice((8, 32, 64, 128, 192, 256, 512, 4096, 8192, 131072))))
            text = (f"{sub}{ev}: call_site={site} ptr={self.ptr(True)} bytes_req={req} bytes_alloc={alloc} "
                    f"gfp_flags={rng.choice(GFPS)}")
            if ev.endswith("_node") or rng.random() < 0.2:
                text += f" node={self._pick(lambda: str(rng.choice((-1, 0, 1, 3))))}"
            if rng.random() < 0.15:
                text += f" accounted={rng.choice(('true', 'false', 'maybe'))}"
            if ev.startswith("kmem_cache") and rng.random() < 0.85:
                text += f" name={rng.choice(CACHE_NAMES)}"
            return text
        if kind == "free":
            ev = rng.choice(("kfree", "kmem_cache_free"))
            text = f"{sub}{ev}: call_site={site} ptr={self.ptr(False)}"
            if ev == "kmem_cache_free" and rng.random() < 0.85:
                text += f" name={rng.choice(CACHE_NAMES)}"
            return text
        if kind == "page":
            ev = rng.choice(("mm_page_alloc", "mm_page_free", "mm_page_free_batched"))
            text = f"{sub}{ev}: page={self.ptr(True)} pfn={self._pick(lambda: str(rng.randrange(1 << 20)))}"
            if ev != "mm_page_free_batched" or rng.random() < 0.3:
                text += f" order={self._pick(lambda: str(rng.randrange(11)))}"
            if ev == "mm_page_alloc":
                text += f" migratetype={rng.randrange(6)} gfp_flags={rng.choice(GFPS)}"
            return text
        if kind == "mark":
            mark = rng.choice(MARKS)
            return f"print: tracing_mark_write: {mark}" if perf or rng.random() < 0.2 else f"tracing_mark_write: {mark}"
        if kind == "func":
            f = rng.choice(FUNCS)
            return f"function: {f.replace(' <-', ' <-- ')}" if perf or rng.random() < 0.2 else f
        return rng.choice(OTHER)

    def line(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.03:
            return rng.choice(HEADERS)
        text = self.prefix() + self.payload()
        if rng.random() < self.wild:
            text = self.mutate(text)
        return text

    def mutate(self, text: str) -> str:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            n = len(text)
            what = rng.randrange(6)
            i = rng.randrange(n + 1)
            if what == 0:
                text = text[:i]  # cut short
            elif what == 1:
                text = text[:i] + text[i + rng.randint(1, 8):]
            elif what == 2:
                text = text[:i] + rng.choice(("\x00", "\xff", ": ", "=", " ", "[", "]", "-", "\t", "\u2028",
                                              "\u0661", "\r")) + text[i:]
            elif what == 3 and n > 2:
                j = rng.randrange(n)
                chars = list(text)
                chars[i % n], chars[j] = chars[j], chars[i % n]
                text = "".join(chars)
            elif what == 4:
                text = text[:i] + rng.choice(WEIRD) + text[i:]
            else:
                text = text + " " + text[:i]
        return text

    def trace(self, n: int) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.02:
            return b""
        head = [HEADERS[0], "#"] if rng.random() < 0.7 else []
        if self.layout == "trace-cmd":
            head = ["cpus=4", *head]
        if r < 0.05:
            return "\n".join(rng.choice(HEADERS) for _ in range(n)).encode()
        lines = head + [self.line() for _ in range(n)]
        if rng.random() < 0.05:
            lines.insert(rng.randrange(len(lines) + 1), lines[rng.randrange(len(lines))] if lines else "")
        sep = "\r\n" if rng.random() < 0.1 else "\n"
        data = (sep.join(lines) + (sep if rng.random() < 0.8 else "")).encode("utf-8", "surrogatepass")
        r = rng.random()
        if r < 0.05:
            data = data[: rng.randrange(len(data) + 1)]  # cut at a random byte (maybe inside a UTF-8 sequence)
        elif r < 0.08:
            data = b"\xef\xbb\xbf" + data
        elif r < 0.11:
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.randbytes(rng.randint(1, 300)) + data[at:]
        return data


def random_trace(rng: random.Random, n: int | None = None, wild: float = 0.15, internal_sites: bool = True) -> bytes:
    """One random adversarial trace of about ``n`` lines (random when None); ``internal_sites=False`` leaves out
    the call sites of the model's internal allocations (``--skip-known``)."""
    return TraceGen(rng, wild, internal_sites).trace(n if n is not None else rng.choice((0, 1, 3, 10, 40, 150)))


# ---- the checks ------------------------------------------------------------------------------------


class FuzzFailure(AssertionError):
    """The code under test crashed or broke a promise on an input."""


def _one_line(e: BaseException, what: str) -> None:
    text = str(e)
    if not text or "\n" in text or "\r" in text:
        raise FuzzFailure(f"{what}: {type(e).__name__} message is not one line: {text!r}")


def check_parser(data: bytes, name: str = "<fuzz>") -> ParseStats:
    """Parse ``data`` with skip_bad on and off; returns the stats of the skip_bad run."""
    stats = ParseStats()
    try:
        n = sum(1 for _ in iter_events(io.BytesIO(data), skip_bad=True, stats=stats))
    except Exception as e:
        raise FuzzFailure(f"iter_events(skip_bad=True) raised {type(e).__name__}: {e}") from e
    if not stats.consistent or n != stats.events:
        raise FuzzFailure(f"parser counts do not add up: lines {stats.lines} events {stats.events} (yielded {n}) "
                          f"header {stats.header} skipped {sum(stats.skipped.values())}")
    strict = ParseStats()
    try:
        m = sum(1 for _ in iter_events(io.BytesIO(data), skip_bad=False, stats=strict))
        if m != n or strict.lines != stats.lines:
            raise FuzzFailure(f"strict parse gave {m} events/{strict.lines} lines, lenient {n}/{stats.lines} "
                              "without raising")
    except TraceParseError as e:
        _one_line(e, "TraceParseError")
        if not strict.consistent:
            raise FuzzFailure("parser counts do not add up after a TraceParseError") from e
        if e.lineno != strict.lines + 1:
            raise FuzzFailure(f"TraceParseError names line {e.lineno}, {strict.lines} lines were counted") from e
        if not stats.skipped or not any(k.startswith("malformed") for k in stats.skipped):
            raise FuzzFailure(f"strict parse raised ({e}) but skip_bad counted no malformed line") from e
    return stats


MACHINES: tuple[dict[str, object], ...] = (
    {"cpus": 1}, {"cpus": 2}, {"cpus": 4, "nodes": 2}, {"cpus": 1, "CONFIG_DEBUG_SLAB": True},
    {"cpus": 2, "init_on_free": True, "CONFIG_SLAB_FREELIST_HARDENED": True}, {"cpus": 3, "nodes": 3, "mem": "96M"},
    {"cpus": 2, "nodes": 2, "CONFIG_DEBUG_SLAB": True, "noaliencache": True}, {"cpus": 1, "mem": "64M"},
)


def check_replay(data: bytes, machine: dict[str, object], unknown_free: str = "placeholder") -> tuple[int, str]:
    """Replay ``data``; returns (events, outcome) where outcome is ``ok`` or the one-line error raised."""
    stats = ParseStats()
    rep = Replayer(MachineConfig.build(**machine), None, ReplayOptions(skip_bad=True, unknown_free=unknown_free))  # type: ignore[arg-type]
    try:
        s = rep.run(iter_events(io.BytesIO(data), skip_bad=True, stats=stats))
    except KslabError as e:
        _one_line(e, "replay error")
        return stats.events, f"{type(e).__name__}: {e}"
    except Exception as e:
        raise FuzzFailure(f"Replayer.run raised {type(e).__name__}: {e}\n{traceback.format_exc()}") from e
    applied, skipped = sum(s.applied.values()), sum(s.skipped.values())
    if not (applied + skipped == s.events == stats.events) or not stats.consistent:
        raise FuzzFailure(f"events not accounted for: parser {stats.events}, replay {s.events}, applied {applied} + "
                          f"skipped {skipped} = {applied + skipped}; applied {dict(s.applied)} "
                          f"skipped {dict(s.skipped)}")
    try:
        rep.check()
    except Exception as e:
        raise FuzzFailure(f"invariant broken after the replay: {type(e).__name__}: {e}") from e
    return stats.events, "ok"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``kslab.cli.main(argv)`` with stdout and stderr captured: (status, stdout, stderr)."""
    from ..cli import main  # noqa: PLC0415
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = int(e.code or 0)
        except BaseException as e:
            raise FuzzFailure(f"kslab {' '.join(argv)}: {type(e).__name__} escaped main(): {e}\n"
                              f"{traceback.format_exc()}") from e
    return rc, out.getvalue(), err.getvalue()


def check_cli_result(argv: list[str], rc: int, out: str, err: str) -> str:
    """The CLI's promises: status 0 or 1; an error is one ``kslab: error:`` line; no traceback."""
    what = f"kslab {' '.join(argv)}"
    if "Traceback" in err or "Traceback" in out:
        raise FuzzFailure(f"{what}: a traceback was printed:\n{err[-2000:]}")
    if rc not in (0, 1):
        raise FuzzFailure(f"{what}: exit status {rc}\n{err[-2000:]}")
    lines = [line for line in err.splitlines() if line]
    if rc == 1:
        errors = [line for line in lines if line.startswith("kslab: error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            raise FuzzFailure(f"{what}: exit 1 without exactly one closing 'kslab: error:' line: {err[-2000:]!r}")
        return errors[0]
    bad = [line for line in lines if not line.startswith("kslab: warning: ")]
    if "-q" in argv and bad:
        raise FuzzFailure(f"{what}: unexpected stderr with -q: {bad[:3]}")
    return "ok"


def write_input(data: bytes, folder: str, rng: random.Random) -> str:
    """``data`` as a file in ``folder``: plain, or .gz/.xz/.bz2 (whose stream is sometimes cut short)."""
    kind = rng.choice(("txt", "txt", "txt", "gz", "xz", "bz2"))
    path = os.path.join(folder, f"trace.{kind}")
    if kind == "gz":
        data = gzip.compress(data)
    elif kind == "xz":
        data = lzma.compress(data)
    elif kind == "bz2":
        data = bz2.compress(data)
    if kind != "txt" and rng.random() < 0.3:
        data = data[: rng.randrange(len(data) + 1)]
    Path(path).write_bytes(data)
    return path


def cli_argv(path: str, folder: str, rng: random.Random) -> list[str]:
    cmd = rng.choice(("replay", "replay", "replay", "stats", "top", "report"))
    argv = [cmd, path]
    m = rng.choice(MACHINES)
    argv += ["--cpus", str(m.get("cpus", 1))]
    if "nodes" in m:
        argv += ["--nodes", str(m["nodes"])]
    if m.get("CONFIG_DEBUG_SLAB"):
        argv.append("--debug-slab")
    if m.get("init_on_free"):
        argv.append("--init-on-free")
    argv += ["--mem", str(m.get("mem", "2G"))]
    if rng.random() < 0.6:
        argv.append("--skip-bad")
    if rng.random() < 0.2:
        argv += ["--unknown-free", "ignore"]
    if rng.random() < 0.2:
        argv += ["--snapshot-on", r"snapshot (\S+) begin", "--out", os.path.join(folder, "snaps")]
    if rng.random() < 0.2:
        argv += ["--action", rng.choice((r"retune written: (.*)=>slabinfo-write \1", "hello=>drop-caches",
                                         "hello=>reap", r"snapshot (\S+) end=>snapshot \1", "never=>shrink dentry"))]
    if rng.random() < 0.1:
        argv += ["--ptr-map", os.path.join(folder, "ptrmap.csv")]
    if cmd == "replay":
        argv += ["-q", "--no-slabinfo"] if rng.random() < 0.7 else ["-q"]
        if rng.random() < 0.3:
            argv += ["--json", os.path.join(folder, "summary.json")]
    elif cmd == "stats":
        argv += ["-q"] + (["--no-replay"] if rng.random() < 0.3 else []) + (["--json"] if rng.random() < 0.5 else [])
    elif cmd == "top":
        argv += ["-q", "--once"] + (["--json"] if rng.random() < 0.5 else [])
    else:
        argv += ["-q", "-o", os.path.join(folder, "report.html"), "--samples", "20"]
    return argv


def check_cli(data: bytes, folder: str, rng: random.Random) -> str:
    path = write_input(data, folder, rng)
    argv = cli_argv(path, folder, rng)
    with contextlib.suppress(FileNotFoundError):  # kslab report does not overwrite a file without --force
        os.remove(os.path.join(folder, "report.html"))
    rc, out, err = run_cli(argv)
    outcome = check_cli_result(argv, rc, out, err)
    if argv[0] == "report" and rc == 0:
        page = Path(argv[argv.index("-o") + 1]).read_text(encoding="utf-8")
        if "<script>alert(1)</script>" in page or "<b>bold</b>" in page:
            raise FuzzFailure(f"kslab {' '.join(argv)}: a name from the trace is in the HTML unescaped")
    return outcome


# ---- the long run ----------------------------------------------------------------------------------


@dataclass
class FuzzStats:
    inputs: int = 0
    bytes: int = 0
    lines: int = 0
    events: int = 0
    cli_runs: int = 0
    parser_skipped: Counter[str] = field(default_factory=Counter)
    replay_outcomes: Counter[str] = field(default_factory=Counter)
    cli_outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines_out(self) -> list[str]:
        def top(c: Counter[str], n: int = 8) -> str:
            return "; ".join(f"{v:,} {k[:90]}" for k, v in c.most_common(n))
        return [
            f"fuzz: {self.inputs:,} inputs tried ({self.bytes:,} bytes, {self.lines:,} lines, {self.events:,} events) "
            f"through the parser and the replay, {self.cli_runs:,} through the kslab command, in {self.seconds:.1f} s",
            f"  failures: {len(self.failures)}",
            f"  parser skips: {sum(self.parser_skipped.values()):,} ({top(self.parser_skipped, 6)})",
            f"  replay outcomes: {top(self.replay_outcomes)}",
            f"  CLI outcomes: {top(self.cli_outcomes)}",
        ]


def fuzz(inputs: int, seed: int, cli_every: int = 10, save: str | None = "fuzz-failures", out: object = None,
         stop_on_failure: bool = False, internal_sites: bool = True) -> FuzzStats:
    rng = random.Random(seed)
    st = FuzzStats()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kslab-fuzz-") as folder:
        for i in range(inputs):
            data = random_trace(rng, internal_sites=internal_sites)
            st.inputs += 1
            st.bytes += len(data)
            try:
                ps = check_parser(data)
                st.lines += ps.lines
                st.parser_skipped.update(ps.skipped)
                events, outcome = check_replay(data, rng.choice(MACHINES), rng.choice(("placeholder", "ignore")))
                st.events += events
                st.replay_outcomes[outcome.split(":", 1)[0] if outcome != "ok" else "ok"] += 1
                if cli_every and i % cli_every == 0:
                    st.cli_runs += 1
                    res = check_cli(data, folder, rng)
                    if res != "ok":  # the kind of error: without the input's name, the line, the numbers
                        res = res.removeprefix("kslab: error: ").replace(folder + os.sep, "")
                        res = "error: " + re.sub(r"\d+", "N", res)[:70]
                    st.cli_outcomes[res] += 1
            except FuzzFailure as e:
                msg = f"seed {seed}, input {i}: {e}"
                st.failures.append(msg)
                if save:
                    Path(save).mkdir(parents=True, exist_ok=True)
                    Path(save, f"seed{seed}-input{i}.trace").write_bytes(data)
                if out is not None:
                    out.write(f"FAIL {msg.splitlines()[0]}\n")  # type: ignore[attr-defined]
                if stop_on_failure:
                    break
            if out is not None and (i + 1) % 1000 == 0:
                out.write(f"  {i + 1:,} inputs, {len(st.failures)} failures, {time.perf_counter() - t0:.0f} s\n")  # type: ignore[attr-defined]
                out.flush()  # type: ignore[attr-defined]
    st.seconds = time.perf_counter() - t0
    return st


def atheris_main(argv: list[str], internal_sites: bool = True) -> int:  # pragma: no cover - needs atheris
    try:
        import atheris  # noqa: PLC0415
    except ImportError:
        print("fuzz: atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    count = Counter[str]()

    def one_input(data: bytes) -> None:
        count["inputs"] += 1
        if data[:1] == b"\x00":  # structure-aware: the bytes seed the generator
            fdp = atheris.FuzzedDataProvider(data[1:])
            data = random_trace(random.Random(fdp.ConsumeInt(8)), fdp.ConsumeIntInRange(0, 60),
                                internal_sites=internal_sites)
        check_parser(data)
        machine = MACHINES[len(data) % len(MACHINES)]
        check_replay(data, machine)
        if count["inputs"] % 10000 == 0:
            print(f"fuzz: {count['inputs']:,} inputs tried", file=sys.stderr, flush=True)

    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kslab.tools.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=10_000, help="random inputs to try (default 10,000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--cli-every", type=int, default=10, help="run the kslab command on every Nth input (0: never)")
    ap.add_argument("--save", default="fuzz-failures", help="folder for the inputs that failed")
    ap.add_argument("--skip-known", action="store_true", help="leave out the call sites of the model's internal "
                    "allocations (they found the first bug of tests/robustness/test_replay_bugs.py): to look "
                    "elsewhere while such a bug is open")
    ap.add_argument("--atheris", action="store_true", help="coverage-guided fuzzing with atheris; the arguments "
                    "after -- go to libFuzzer (e.g. -runs=100000 -max_len=4096)")
    a, rest = ap.parse_known_args(argv)
    if a.atheris:
        return atheris_main([x for x in rest if x != "--"], not a.skip_known)
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    print(f"fuzz: seed {a.seed}, {a.inputs:,} inputs, the kslab command on every {a.cli_every}th"
          f"{', without the internal call sites' if a.skip_known else ''}", flush=True)
    st = fuzz(a.inputs, a.seed, a.cli_every, a.save, sys.stdout, internal_sites=not a.skip_known)
    for line in st.lines_out():
        print(line)
    for f in st.failures[:20]:
        print("  " + f.splitlines()[0])
    print("fuzz: OK" if not st.failures else f"fuzz: FAILED ({len(st.failures)} inputs saved in {a.save}/)")
    return 0 if not st.failures else 1


if __name__ == "__main__":
    sys.exit(main())
