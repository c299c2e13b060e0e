"""A golden-file failure shows a unified diff of the pinned text against the new one."""

from __future__ import annotations

from pathlib import Path

import pytest

import goldens


def test_a_golden_mismatch_shows_a_unified_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KSLAB_UPDATE_GOLDEN", raising=False)
    (tmp_path / "g.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    goldens.check_golden(tmp_path, "g.txt", "one\ntwo\nthree\n")  # the same text passes
    with pytest.raises(AssertionError) as e:
        goldens.check_golden(tmp_path, "g.txt", "one\n2\nthree\n")
    msg = str(e.value)
    assert "--- g.txt (pinned)\n+++ g.txt (now)\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n" in msg


def test_a_long_diff_is_cut_and_a_missing_newline_said() -> None:
    want = "".join(f"{i}\n" for i in range(500))
    with pytest.raises(AssertionError) as e:
        goldens.assert_same_text(want, "x", "t")
    msg = str(e.value)
    assert "more lines of diff" in msg and msg.count("\n") < goldens.MAX_DIFF_LINES + 5
    with pytest.raises(AssertionError) as e:
        goldens.assert_same_text("a\n", "a", "t")
    assert "\\ No newline at end of file" in str(e.value)
