"""report.compare: the one model-vs-kernel comparison that kslab replay prints and kslab report draws."""

from __future__ import annotations

import io

import pytest

from kslab.mm.errors import KslabError
from kslab.report.compare import CELL_COLUMNS, compare_file, compare_slabinfo, headline, write_comparison

HEAD = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> ...\n"
LINE = "{name:<12s} {a:6d} {n:6d}    64   64    1 : tunables  120   60    8 : slabdata {sa:6d} {sn:6d}      0\n"


def slabinfo(*rows: tuple[str, int, int, int, int]) -> str:
    return HEAD + "".join(LINE.format(name=r[0], a=r[1], n=r[2], sa=r[3], sn=r[4]) for r in rows)


def test_equal_differing_missing_and_model_only():
    kernel = slabinfo(("dentry", 100, 128, 2, 2), ("pid", 10, 64, 1, 1), ("gone", 1, 64, 1, 1))
    model = slabinfo(("dentry", 100, 192, 3, 3), ("pid", 10, 64, 1, 1), ("extra", 0, 0, 0, 0))
    c = compare_slabinfo(model, kernel, "k/slabinfo.end")
    assert (c.equal, c.total) == (5, 12) and c.total == 3 * len(CELL_COLUMNS)
    assert c.diffs == [("dentry", "num_objs", 192, 128), ("dentry", "active_slabs", 3, 2),
                       ("dentry", "num_slabs", 3, 2), ("gone", "active_objs", None, 1), ("gone", "num_objs", None, 64),
                       ("gone", "active_slabs", None, 1), ("gone", "num_slabs", None, 1)]
    assert c.num_objs == {"dentry": (192, 128), "pid": (64, 64), "gone": (None, 64)}
    assert c.model_only == ["extra"]
    d = c.as_dict()
    assert d["num_objs_errors"] == [["dentry", 192, 128], ["gone", None, 64]] and d["caches"] == 3
    assert headline(c) == "kslab vs the real kernel (slabinfo.end): 5/12 cells equal (41.67%)"
    out = io.StringIO()
    write_comparison(c, out)
    assert out.getvalue().splitlines()[2] == "    dentry                   num_objs     kslab      192  kernel      128"
    assert "gone                     active_objs  kslab     None  kernel        1" in out.getvalue()


def test_many_differences_are_cut_in_the_printout():
    kernel = slabinfo(*[(f"c{i}", 1, 64, 1, 1) for i in range(10)])
    c = compare_slabinfo(HEAD, kernel, "k")
    out = io.StringIO()
    write_comparison(c, out)
    assert len(c.diffs) == 40 and out.getvalue().rstrip().endswith("... 20 more")


def test_bad_kernel_files(tmp_path):
    with pytest.raises(ValueError, match="nope: cannot read the kernel's slabinfo"):
        compare_file(HEAD, tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.write_text(HEAD + "dentry 1 2\n")
    with pytest.raises(KslabError, match=r"bad:3: expected"):
        compare_file(HEAD, bad)
