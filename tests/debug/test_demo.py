"""docs/debugging.md is executable: its Python blocks run in order, in one namespace, and what each
prints must equal the ``text`` block that follows it (``narration`` blocks are illustrations, checked
only by the asserts inside the Python blocks)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "debugging.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_doc_has_the_three_bugs():
    langs = [lang for lang, _ in blocks()]
    assert langs.count("python") >= 5 and langs.count("text") >= 5
    text = DOC.read_text(encoding="utf-8")
    for heading in ("### 1. Use after free", "### 2. Overflow", "### 3. Double free"):
        assert heading in text


def test_debugging_md_runs_and_prints_what_it_shows():
    bs = blocks()
    ns: dict[str, object] = {"__name__": "debugging_md"}
    ran = 0
    for i, (lang, code) in enumerate(bs):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{DOC.name} block {i}", "exec"), ns)  # the doc is ours
        ran += 1
        nxt = bs[i + 1] if i + 1 < len(bs) else ("", "")
        if nxt[0] == "text":
            assert out.getvalue() == nxt[1], f"block {i}: the doc shows different output"
        elif nxt[0] == "narration":
            assert out.getvalue().strip(), f"block {i}: no narration"
    assert ran >= 5
    k = ns["k"]
    assert [r.kind for r in k.misuse] == ["use_after_free", "overflow", "double_free", "double_free"]
