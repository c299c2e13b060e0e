"""The replay options both allocators share (trace/replay/options.py TraceReplayOptions): SLAB's ReplayOptions
and SLUB's SlubReplayOptions are both one, and --unknown-free acts in the SLUB replay as in SLAB's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_slub_replay import BASE, T, machine

from kslab.cli import main
from kslab.trace.replay import ReplayOptions, UnknownFree
from kslab.trace.replay.options import TraceReplayOptions
from kslab.trace.replay_slub.engine import Applied, Skip, SlubReplay, replay_slub_trace
from kslab.trace.replay_slub.options import SlubReplayOptions


def names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_one_base_class_for_the_allocator_neutral_options():
    assert issubclass(ReplayOptions, TraceReplayOptions) and issubclass(SlubReplayOptions, TraceReplayOptions)
    shared = names(TraceReplayOptions)
    assert shared == {"out", "unknown_free"}
    assert names(ReplayOptions) & names(SlubReplayOptions) == shared
    assert ReplayOptions().unknown_free == SlubReplayOptions().unknown_free == UnknownFree.PLACEHOLDER


def _frees_of_unknown(tmp_path: Path) -> Path:
    t = T().cache_free(BASE, "kmalloc-64").cache_free(BASE + 0x40, "kmalloc-64")
    path = tmp_path / "trace.txt"
    path.write_text(t.text())
    return path


@pytest.mark.parametrize(("policy", "applied", "ignored"),
                         [(UnknownFree.PLACEHOLDER, 2, 0), (UnknownFree.IGNORE, 0, 2)])
def test_unknown_free_policy_in_the_slub_replay(tmp_path: Path, policy: str, applied: int, ignored: int):
    rep: SlubReplay = replay_slub_trace(machine(), _frees_of_unknown(tmp_path), placeholders={"kmalloc-64": 2},
                                        options=SlubReplayOptions(unknown_free=policy, use_cache=False))
    assert rep.applied["kmem_cache_free" + Applied.PLACEHOLDER_SUFFIX] == applied
    assert rep.skipped[Skip.FREE_UNKNOWN_IGNORED] == ignored
    assert rep.unknown_frees["kmalloc-64"] == 2


def test_unknown_free_option_reaches_the_slub_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    trace = _frees_of_unknown(tmp_path)
    caches = tmp_path / "none.manifest"
    caches.write_text("# no caches beyond the boot ones\n")
    js = tmp_path / "s.json"
    argv = ["replay", str(trace), "--allocator", "slub", "--caches", str(caches), "--mem", "256M", "--no-slabinfo",
            "-q", "--json", str(js), "--unknown-free", "ignore"]
    assert main(argv) == 0, capsys.readouterr().err
    assert '"free of a pointer not allocated in the trace (ignored by --unknown-free)": 2' in js.read_text()


def test_explain_an_event_of_a_6_12_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """kslab explain --allocator slub --trace: the SLUB replay up to the event, then its narration."""
    t = T()
    for i in range(3):
        t.kmalloc(BASE + 0x40 * i, 64, 64, cpu=0)
    t.kfree(BASE + 0x40, cpu=1)
    trace = tmp_path / "trace.txt"
    trace.write_text(t.text())
    caches = tmp_path / "none.manifest"
    caches.write_text("# no caches beyond the boot ones\n")
    argv = ["explain", "--allocator", "slub", "--trace", str(trace), "--caches", str(caches), "--cpus", "2",
            "--mem", "256M"]
    assert main([*argv, "--line", "6"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith("event 4 (line 6) on CPU 1: kfree: call_site=g+0x1/0x10 ptr=0xffff888013000040")
    assert "do_slab_free: " in out and "__slab_free: slab pfn" in out and "is frozen" in out
    assert main([*argv, "--event", "1", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "第 1 个事件" in out and "模型中的对象\uff1a0x" in out and "new_slab" in out
    assert main(["explain", "--allocator", "slub", "--trace", str(trace), "--event", "1"]) == 1
    assert "--caches caches.log" in capsys.readouterr().err
