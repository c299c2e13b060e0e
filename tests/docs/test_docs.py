"""The documentation runs: every command and snippet that docs/tutorial.md, README.md and
docs/heap-questions.md show as
runnable is executed, and where the doc shows its output, the output must be what kslab prints.

Conventions of the two documents (see the note at the top of docs/tutorial.md):

* a fenced ```sh block is runnable: each of its lines that starts with ``kslab`` (after joining
  ``\\`` continuations; ``# comments`` are dropped by shlex) runs in-process as
  ``kslab.cli.main(shlex.split(line)[1:])`` and must exit 0.  Other lines (``python3 -m venv ...``,
  ``cd``) are not run;
* a fenced ```python block runs, in document order, in one namespace per document;
* a fenced ```output block right after a runnable block is that block's standard output, compared
  exactly except for trailing whitespace at the end of lines and of the block;
* anything else (```text, ```console, ```c ...) is shown, not run: commands that need files the
  reader does not have (their own trace), abridged or non-deterministic output (timings).

Commands run in a temporary folder in which ``src`` links to the project's ``src`` (so the bundled
data is ``src/kslab/data/...`` as in a checkout) and in which ``report.html`` and the like land.

``KSLAB_UPDATE_GOLDEN=1 pytest tests/docs`` rewrites the ```output blocks from what kslab prints
now; review the diff before committing it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from kslab.cli import main

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
README = ROOT / "README.md"
HEAP = ROOT / "docs" / "heap-questions.md"
DOCS = (TUTORIAL, README, HEAP)
UPDATE = os.environ.get("KSLAB_UPDATE_GOLDEN") == "1"

# a fence opens with ``` and an info string at the start of a line, and closes with ``` alone
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    doc: Path
    index: int        # position among the document's fenced blocks
    lang: str
    body: str
    start: int        # offsets of the body in the document text
    end: int
    line: int         # line number of the opening fence

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text(encoding="utf-8")
    out = []
    for i, m in enumerate(FENCE.finditer(text)):
        out.append(Block(doc, i, m.group(1), m.group(2), m.start(2), m.end(2), text.count("\n", 0, m.start()) + 1))
    return out


def commands(body: str) -> list[str]:
    """The ``kslab ...`` command lines of a sh block (continuations joined)."""
    out = []
    for line in re.sub(r"\\\n", " ", body).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "kslab":
            out.append(line.strip())
    return out


def output_after(bs: list[Block], i: int) -> Block | None:
    """The ```output block that directly follows block ``i`` (only blank text in between)."""
    if i + 1 >= len(bs) or bs[i + 1].lang != "output":
        return None
    text = bs[i].doc.read_text(encoding="utf-8")
    between = text[bs[i].end: bs[i + 1].start]
    # between = the closing fence of block i, blank lines, the opening fence of the output block
    lines = [ln for ln in between.splitlines() if ln.strip()]
    return bs[i + 1] if len(lines) == 2 else None


def norm(s: str) -> str:
    return "\n".join(line.rstrip() for line in s.rstrip().splitlines())


def run_kslab(line: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(shlex.split(line, comments=True)[1:])
    return rc, out.getvalue(), err.getvalue()


def run_python(block: Block, ns: dict[str, object]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.body, block.where, "exec"), ns)  # the docs are ours
    return out.getvalue()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "src").symlink_to(ROOT / "src", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sh_blocks() -> list[Block]:
    return [b for doc in DOCS for b in blocks(doc) if b.lang == "sh" and commands(b.body)]


def run_sh(block: Block) -> str:
    stdout = []
    for line in commands(block.body):
        rc, out, err = run_kslab(line)
        assert rc == 0, f"{block.where}: `{line}` exited {rc}:\n{err}"
        stdout.append(out)
    return "".join(stdout)


# ---- the structure the tests rely on ------------------------------------------------------------

def test_the_documents_have_runnable_blocks():
    tut = blocks(TUTORIAL)
    assert sum(len(commands(b.body)) for b in tut if b.lang == "sh") >= 20
    assert sum(1 for b in tut if b.lang == "output") >= 20
    assert any(b.lang == "python" for b in tut)
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## A two-minute tour"):]
    tour = tour[: tour.index("\n## ", 1)]
    tour_cmds = [c for m in FENCE.finditer(tour) if m.group(1) == "sh" for c in commands(m.group(2))]
    for needed in ("kslab slabinfo", "kslab explain", "--lang zh", "kslab replay", "kslab top", "kslab stats",
                   "kslab report -o report.html", "kslab geometry", "kslab buddyinfo"):
        assert any(needed in c for c in tour_cmds), f"the README tour lacks {needed!r}"


def test_readme_first_lines_are_the_contract():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[3].startswith("python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/kslab replay")
    assert lines[4].startswith("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
                               ".venv/bin/python -m pytest   ")
    # and .ci/run runs that same test command
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == ".venv/bin/python -m pytest"


def test_every_output_block_belongs_to_a_runnable_block():
    for doc in DOCS:
        bs = blocks(doc)
        for i, b in enumerate(bs):
            if b.lang == "output":
                prev = bs[i - 1] if i else None
                assert prev is not None and output_after(bs, i - 1) is b, f"{b.where}: output of what?"
                assert prev.lang == "python" or (prev.lang == "sh" and commands(prev.body)), \
                    f"{b.where}: an output block after a block that is not run"


# ---- running them -------------------------------------------------------------------------------

@pytest.mark.skipif(UPDATE, reason="KSLAB_UPDATE_GOLDEN=1: test_update_docs rewrites the outputs")
@pytest.mark.parametrize("block", sh_blocks(), ids=lambda b: b.where)
def test_sh_block(block, workdir):
    out = run_sh(block)
    expected = output_after(blocks(block.doc), block.index)
    if expected is not None:
        assert norm(out) == norm(expected.body), f"{block.where}: kslab prints something else than the doc shows"
    if any("report -o report.html" in c for c in commands(block.body)):
        page = (workdir / "report.html").read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "</html>" in page


@pytest.mark.skipif(UPDATE, reason="KSLAB_UPDATE_GOLDEN=1: test_update_docs rewrites the outputs")
@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_python_blocks(doc, workdir):
    bs = blocks(doc)
    ns: dict[str, object] = {"__name__": doc.stem}
    for i, b in enumerate(bs):
        if b.lang != "python":
            continue
        out = run_python(b, ns)
        expected = output_after(bs, i)
        if expected is not None:
            assert norm(out) == norm(expected.body), f"{b.where}: the snippet prints something else than the doc shows"


@pytest.mark.skipif(not UPDATE, reason="only with KSLAB_UPDATE_GOLDEN=1")
@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_update_docs(doc, workdir):
    """Rewrite the ```output blocks of ``doc`` with what kslab prints now."""
    bs = blocks(doc)
    text = doc.read_text(encoding="utf-8")
    ns: dict[str, object] = {"__name__": doc.stem}
    edits = []
    for i, b in enumerate(bs):
        if b.lang == "python":
            out = run_python(b, ns)
        elif b.lang == "sh" and commands(b.body):
            out = run_sh(b)
        else:
            continue
        target = output_after(bs, i)
        if target is not None:
            edits.append((target.start, target.end, norm(out) + "\n"))
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    doc.write_text(text, encoding="utf-8")
