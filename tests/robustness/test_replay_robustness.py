"""The replay on adversarial traces: never an exception but a one-line KslabError, every event accounted for
(applied or skipped with a reason, and as many as the parser produced), the model's invariants intact after it.

Accounting, as ``kslab replay --json`` reports it (summary_dict in src/kslab/cli/replay.py):

* parser:  lines == events + header_lines + sum(parser_skipped)
* replay:  events == sum(applied) + sum(skipped)     (the events the parser produced, each once)

``internal`` counts are not events: they say how the model's own allocations were paired with the trace's
(an internal trace event is counted once in ``applied``, as ``... (internal)``); ``unknown_frees`` and
``placeholders`` detail frees that are already counted in ``applied``/``skipped``.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kslab.cli.replay import bundled_trace
from kslab.mm.config import MachineConfig
from kslab.tools.fuzz import MACHINES, check_replay, random_trace, run_cli
from kslab.trace.ftrace import ParseStats, iter_events
from kslab.trace.replay import Replayer, ReplayOptions

DATA = Path(__file__).resolve().parent.parent / "trace" / "data"
P = "          <idle>-0       [000] d...     0.000000: "


# derandomize: the same examples every run (the long run, python -m kslab.tools.fuzz, explores)
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.sampled_from(MACHINES), st.sampled_from(["placeholder", "ignore"]))
def test_adversarial_traces_replay_cleanly(rng: random.Random, machine: dict[str, object], unknown_free: str) -> None:
    check_replay(random_trace(rng, rng.choice((5, 30, 120))), machine, unknown_free)


CASES = {
    "huge size": P + "kmalloc: call_site=f+0x1/0x2 ptr=ffff888012ddeb00 bytes_req=99999999999999999999 "
                     "bytes_alloc=64 gfp_flags=GFP_KERNEL",
    "negative size": P + "kmalloc: call_site=f+0x1/0x2 ptr=ffff888012ddeb00 bytes_req=-5 bytes_alloc=-5 "
                         "gfp_flags=GFP_KERNEL",
    "negative huge size": P + "kmalloc_node: call_site=f+0x1/0x2 ptr=ffff888012ddeb00 "
                              "bytes_req=-99999999999999999999999 bytes_alloc=8 gfp_flags=GFP_KERNEL node=0",
    "pointer wider than 64 bits": P + "kmalloc: call_site=f ptr=ffffffffffffffffffffffffffff bytes_req=5 "
                                      "bytes_alloc=8 gfp_flags=GFP_KERNEL\n"
                                  + P + "kfree: call_site=f ptr=ffffffffffffffffffffffffffff",
    "pointer not canonical": P + "kmalloc: call_site=f ptr=0000123400000000 bytes_req=5 bytes_alloc=8 "
                                 "gfp_flags=GFP_KERNEL",
    "CPU that does not exist": "  a-1 [999] ....  0.1: kmalloc: call_site=f ptr=ffff888012ddeb00 bytes_req=5 "
                               "bytes_alloc=8 gfp_flags=GFP_KERNEL\n  a-1 [99999999999999999999] ....  0.2: kfree: "
                               "call_site=f ptr=ffff888012ddeb00",
    "free of a pointer never allocated": P + "kfree: call_site=f+0x1/0x2 ptr=ffff888012ddeb00",
    "double free": (P + "kmalloc: call_site=f ptr=ffff888012ddeb00 bytes_req=5 bytes_alloc=8 gfp_flags=GFP_KERNEL\n"
                    + (P + "kfree: call_site=f ptr=ffff888012ddeb00\n") * 3),
    "cache name with spaces and HTML": P + "kmem_cache_alloc: call_site=f ptr=ffff888012ddeb00 bytes_req=48 "
                                           "bytes_alloc=48 gfp_flags=GFP_KERNEL name=my <b>cache</b> & co",
    "kmem_cache_free of an unknown cache": P + "kmem_cache_free: call_site=f+0x1/0x2 ptr=ffff888012ddeb00 name=nosuch",
    "kmem_cache_free naming another cache": (P + "kmalloc: call_site=f ptr=ffff888012ddeb00 bytes_req=5 bytes_alloc=8 "
                                             "gfp_flags=GFP_KERNEL\n" + P + "kmem_cache_free: call_site=f "
                                             "ptr=ffff888012ddeb00 name=dentry"),
    "node out of range": P + "kmalloc_node: call_site=f ptr=ffff888012ddeb00 bytes_req=448 bytes_alloc=512 "
                             "gfp_flags=GFP_KERNEL node=99999",
    "all gfp bits": P + "kmalloc: call_site=f ptr=ffff888012ddeb00 bytes_req=5 bytes_alloc=8 "
                        "gfp_flags=0xffffffffffffffff",
    "time backwards and far": "  a-1 [000] ....  5.1: tracing_mark_write: x\n"
                              "  a-1 [000] ....  1.0: tracing_mark_write: y\n"
                              "  a-1 [000] ....  99999999999.5: tracing_mark_write: z",
    "reap on a CPU that does not exist": "  a-1 [007] ....  0.1: cache_reap <-process_one_work",
    "page event of impossible order": P + "mm_page_alloc: page=ffffea00004218c0 pfn=-1 order=99 migratetype=0 "
                                          "gfp_flags=GFP_KERNEL",
    "empty file": "",
    "headers only": "# tracer: nop\n#\n#           TASK-PID     CPU#  ||||   TIMESTAMP  FUNCTION\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("machine", [{"cpus": 1}, {"cpus": 4, "nodes": 2, "CONFIG_DEBUG_SLAB": True}])
def test_adversarial_cases(name: str, machine: dict[str, object]) -> None:
    data = (CASES[name] + "\n").encode()
    _, outcome = check_replay(data, machine)
    assert outcome == "ok"


def summary(argv: list[str], tmp_path: Path) -> dict[str, object]:
    out = tmp_path / "summary.json"
    rc, _, err = run_cli(["replay", *argv, "-q", "--no-slabinfo", "--json", str(out)])
    assert rc == 0, err
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def assert_accounted(d: dict[str, object]) -> None:
    parser_skipped = sum(d["parser_skipped"].values())  # type: ignore[attr-defined]
    applied = sum(d["applied"].values())  # type: ignore[attr-defined]
    skipped = sum(d["skipped"].values())  # type: ignore[attr-defined]
    assert d["lines"] == d["events"] + d["header_lines"] + parser_skipped
    assert d["events"] == applied + skipped


def test_bundled_real_trace_every_event_accounted_for(tmp_path: Path) -> None:
    d = summary([], tmp_path)  # no TRACE: the bundled 5.10 excerpt, synced with its /proc/slabinfo
    assert d["events"] > 30_000
    assert_accounted(d)


@pytest.mark.parametrize("name", ["oracle-R1-global.txt", "oracle-R2-counter.txt", "kmem-probe-SLAB-excerpt.txt"])
def test_test_traces_every_event_accounted_for(name: str, tmp_path: Path) -> None:
    d = summary([str(DATA / name), "--cpus", "2"], tmp_path)
    assert d["events"] > 0
    assert_accounted(d)


def test_adversarial_file_accounted_for_with_skip_bad(tmp_path: Path) -> None:
    text = random_trace(random.Random(7), 300)
    p = tmp_path / "t.txt"
    p.write_bytes(text)
    d = summary([str(p), "--skip-bad", "--cpus", "3", "--nodes", "3", "--mem", "96M"], tmp_path)
    assert d["parser_skipped"]
    assert_accounted(d)


def test_replayer_counts_match_the_parser_on_the_bundled_trace() -> None:
    stats = ParseStats()
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    s = rep.run(iter_events(bundled_trace(), stats=stats))
    assert stats.consistent and s.events == stats.events
    assert sum(s.applied.values()) + sum(s.skipped.values()) == s.events
    rep.check()


def test_skipped_reasons_are_named() -> None:
    text = "".join(CASES[n] + "\n" for n in ("free of a pointer never allocated", "kmem_cache_free of an unknown cache",
                                             "page event of impossible order"))
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    stats = ParseStats()
    s = rep.run(iter_events(io.StringIO(text), skip_bad=True, stats=stats))
    assert all(reason and count > 0 for reason, count in s.skipped.items() if count)
    assert stats.skipped == {"malformed: impossible order": 1}
