"""Golden files shared by the tests: compare a text with its pinned file, or rewrite it on request."""

from __future__ import annotations

import os
from pathlib import Path


def check_golden(folder: Path, name: str, text: str) -> None:
    """Compare ``text`` with FOLDER/NAME; with KSLAB_UPDATE_GOLDEN=1 the file is rewritten instead."""
    path = folder / name
    if os.environ.get("KSLAB_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with KSLAB_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (KSLAB_UPDATE_GOLDEN=1 to regenerate)"
