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
from dataclasses import dataclass, field
from pathlib import Path

from ..mm.config import MachineConfig
from ..mm.errors import KslabError
from ..trace.errors import TraceParseError
from ..trace.ftrace import ParseStats, iter_events
from ..trace.replay import Replayer, ReplayOptions
from .fuzz_gen import (
    CACHE_NAMES,
    COMMS,
    FUNCS,
    GFPS,
    HEADERS,
    INTERNAL_ALLOC,
    MARKS,
    OTHER,
    SITES,
    WEIRD,
    TraceGen,
    random_trace,
)

__all__ = [
    # (the upper-case names but MACHINES, TraceGen and random_trace are fuzz_gen.py's)
    "CACHE_NAMES",
    "COMMS",
    "FUNCS",
    "GFPS",
    "HEADERS",
    "INTERNAL_ALLOC",
    "MACHINES",
    "MARKS",
    "OTHER",
    "SITES",
    "WEIRD",
    "FuzzFailure",
    "FuzzStats",
    "TraceGen",
    "check_cli",
    "check_cli_result",
    "check_parser",
    "check_replay",
    "cli_argv",
    "fuzz",
    "main",
    "random_trace",
    "run_cli",
    "write_input",
]


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
    rep = Replayer(MachineConfig.build(**machine), None, ReplayOptions(unknown_free=unknown_free))  # type: ignore[arg-type]
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
