"""Golden files shared by the tests: compare a text with its pinned file, or rewrite it on request.

A mismatch fails with a unified diff of the pinned text against the new one (pytest rewrites only the
asserts of test modules, so this module makes its own)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

#: at most this many lines of diff in a failure message (the rest is counted)
MAX_DIFF_LINES = 200


def unified_diff(want: str, got: str, name: str) -> str:
    """The unified diff from ``want`` (the pinned text) to ``got``, at most MAX_DIFF_LINES lines."""
    lines = list(difflib.unified_diff(want.splitlines(keepends=True), got.splitlines(keepends=True),
                                      fromfile=f"{name} (pinned)", tofile=f"{name} (now)"))
    shown = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                    for line in lines[:MAX_DIFF_LINES])
    if len(lines) > MAX_DIFF_LINES:
        shown += f"... {len(lines) - MAX_DIFF_LINES} more lines of diff\n"
    return shown


def assert_same_text(want: str, got: str, name: str) -> None:
    """``got == want``, or an AssertionError whose message is the unified diff between them."""
    if got != want:
        raise AssertionError(f"{name} differs (KSLAB_UPDATE_GOLDEN=1 to regenerate a golden file):\n"
                             + unified_diff(want, got, name))


def check_golden(folder: Path, name: str, text: str) -> None:
    """Compare ``text`` with FOLDER/NAME; with KSLAB_UPDATE_GOLDEN=1 the file is rewritten instead."""
    path = folder / name
    if os.environ.get("KSLAB_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with KSLAB_UPDATE_GOLDEN=1 and review it"
    assert_same_text(path.read_text(encoding="utf-8"), text, name)
