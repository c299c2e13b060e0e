"""An empty trace, or one without events, given to the SLUB replay: the SLAB replay's one-line error naming the
file, and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from kslab.cli import main


@pytest.mark.parametrize(("text", "why"), [("", "the input is empty"),
                                           ("# tracer: nop\n#\n", "2 header lines and no trace lines")])
def test_a_trace_without_events_is_the_slab_replays_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          text: str, why: str) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text(text)
    caches = tmp_path / "caches.manifest"
    caches.write_text("my_cache 200 0 0 1\n")
    assert main(["replay", str(trace), "--mem", "256M"]) == 1
    slab = capsys.readouterr().err
    assert main(["replay", str(trace), "--allocator", "slub", "--caches", str(caches), "--mem", "256M"]) == 1
    slub = capsys.readouterr().err
    assert slub == slab == f"kslab: error: {trace}: no events ({why})\n"
