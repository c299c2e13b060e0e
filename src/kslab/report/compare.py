"""The model's /proc/slabinfo against a real kernel's: the one comparison ``kslab replay`` prints and
``kslab report`` draws, so that the two never disagree.

A *cell* is one of :data:`CELL_COLUMNS` of one cache the kernel lists (the columns that follow from
the allocator's state; objsize, objperslab and pagesperslab follow from the geometry and the
tunables from the boot, and are the same whenever the caches are).  A cache the kernel lists and the
model lacks counts as unequal in every cell (its model value is ``None``); a cache only the model has
is listed in :attr:`Comparison.model_only`, not counted (the kernel cannot be wrong about it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..trace.slabinfo_parse import parse_slabinfo

#: The /proc/slabinfo columns compared, in the kernel's order.
CELL_COLUMNS: tuple[str, ...] = ("active_objs", "num_objs", "active_slabs", "num_slabs")

#: Differing cells printed by :func:`write_comparison` before "... N more".
PRINTED_DIFFS = 20


@dataclass(slots=True)
class Comparison:
    """One snapshot of the model against the kernel's /proc/slabinfo at the same point."""

    label: str  # the snapshot's label ("end" for the end of the trace)
    kernel_file: str
    equal: int = 0
    total: int = 0
    #: (cache, column, model value or None when the model lacks the cache, kernel value), in the kernel's order
    diffs: list[tuple[str, str, int | None, int]] = field(default_factory=list)
    #: per cache the kernel lists: (model num_objs or None, kernel num_objs)
    num_objs: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    model_only: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.equal / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for the report's JSON): the num_objs error only for the caches where it is not 0."""
        errors = [[name, m, k] for name, (m, k) in self.num_objs.items() if m != k]
        return {"label": self.label, "kernel_file": self.kernel_file, "equal": self.equal, "total": self.total,
                "caches": len(self.num_objs), "diffs": [list(d) for d in self.diffs],
                "num_objs_errors": errors, "model_only": self.model_only}


def compare_slabinfo(model_text: str, kernel_text: str, kernel_file: str, label: str = "end") -> Comparison:
    """Compare two /proc/slabinfo texts cell by cell (a malformed kernel file raises SlabinfoParseError
    naming ``kernel_file`` and the line)."""
    kern = parse_slabinfo(kernel_text, kernel_file)
    model = parse_slabinfo(model_text, "<model slabinfo>")
    cmp = Comparison(label, kernel_file)
    for name, kv in kern.items():
        mv = model.get(name)
        for col in CELL_COLUMNS:
            cmp.total += 1
            got = None if mv is None else mv.get(col)
            if got == kv.get(col):
                cmp.equal += 1
            else:
                cmp.diffs.append((name, col, got, kv.get(col, 0)))
        cmp.num_objs[name] = (None if mv is None else mv.get("num_objs"), kv.get("num_objs", 0))
    cmp.model_only = [name for name in model if name not in kern]
    return cmp


def compare_file(model_text: str, kernel_path: Path | str, label: str = "end") -> Comparison:
    """:func:`compare_slabinfo` against a file (a file that cannot be read is a ValueError naming it)."""
    path = Path(kernel_path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ValueError(f"{path}: cannot read the kernel's slabinfo: {e.strerror or e}") from None
    return compare_slabinfo(model_text, text, str(path), label)


def headline(cmp: Comparison) -> str:
    """The one line a user asked for: how many cells of the kernel's /proc/slabinfo the model predicted."""
    return (f"kslab vs the real kernel ({Path(cmp.kernel_file).name}): {cmp.equal}/{cmp.total} cells equal "
            f"({cmp.percent:.2f}%)")


def write_comparison(cmp: Comparison, out: IO[str]) -> None:
    """The headline and the first :data:`PRINTED_DIFFS` differing cells, as ``kslab replay`` prints them."""
    out.write("\n" + headline(cmp) + "\n")
    for name, col, got, want in cmp.diffs[:PRINTED_DIFFS]:
        out.write(f"    {name:<24s} {col:<12s} kslab {got!s:>8s}  kernel {want:>8d}\n")
    if len(cmp.diffs) > PRINTED_DIFFS:
        out.write(f"    ... {len(cmp.diffs) - PRINTED_DIFFS} more\n")


def kernel_snapshot(folder: Path, label: str) -> Path | None:
    """The kernel's /proc/slabinfo for snapshot ``label`` in ``folder`` (``slabinfo.<label>``, the name
    ``--snapshot-on`` gives the model's), or None when there is none."""
    path = folder / f"slabinfo.{label}"
    return path if path.is_file() else None
